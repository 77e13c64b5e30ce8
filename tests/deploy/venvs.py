"""Fresh virtual environments for the install tests: pip from the package index (its cache reused), bounded.

An index pip cannot reach skips the test locally and fails it under PGWARDEN_REQUIRE_SERVICES=1, as a missing
service does (tests.support.services.missing_service); any other pip failure fails the test with pip's output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support.services import services_required

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("exporter", "pgwarden", "responder")
# What only the responder's report, console, schedules and drill checks use: never in the exporter's install.
RESPONDER_ONLY = {"matplotlib", "jinja2", "aiohttp-jinja2", "croniter", "pglast", "psycopg-pool"}
PIP_TIMEOUT = 600  # seconds; with a warm pip cache an install takes well under a minute
# pip's words for an index it cannot reach.
NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Network is unreachable|ConnectTimeoutError|ProxyError|Could not fetch URL|No route to host"
)


def copy_source(target: Path) -> Path:
    """What a wheel is built from (as in the Dockerfile), so a build leaves nothing in the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, target / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return target


def fresh_venv(path: Path) -> Path:
    """A new venv with pip (the one ensurepip bundles); returns its bin directory."""
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin"


def run(
    argv: list[str | Path], cwd: Path, timeout: float = 120, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs outside the test's PYTHONPATH (a venv must run what is installed in it, not this checkout);
    `path` goes first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def index_unreachable(reason: str) -> None:
    if services_required():
        pytest.fail(f"the package index is required (PGWARDEN_REQUIRE_SERVICES=1): {reason}", pytrace=False)
    pytest.skip(f"the package index is unreachable: {reason}")


def pip(command: list[str | Path] | str, cwd: Path, path: Path | None = None) -> str:
    """Runs a pip command (argv, or a shell line) that must succeed; returns what it printed."""
    argv: list[str | Path] = ["bash", "-c", command] if isinstance(command, str) else command
    try:
        result = run(argv, cwd, PIP_TIMEOUT, path)
    except subprocess.TimeoutExpired:
        index_unreachable(f"{command!r} did not finish in {PIP_TIMEOUT}s")
        raise AssertionError("unreachable") from None
    output = result.stdout + result.stderr
    if result.returncode != 0 and (network := NETWORK_ERRORS.search(output)):
        errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
        index_unreachable(f"{network.group(0)}; pip: {errors[-1] if errors else 'failed'}")
    assert result.returncode == 0, output
    return output


def check_exporter_only(bin_dir: Path, workdir: Path) -> None:
    """The venv (or image) at `bin_dir` runs pgwarden-exporter and has nothing only the responder uses."""
    python, exporter = bin_dir / "python", bin_dir / "pgwarden-exporter"
    listed = run([python, "-m", "pip", "list", "--format=freeze"], workdir)
    installed = {canonicalize_name(line.split("==")[0]) for line in listed.stdout.split()}
    assert "pgwarden" in installed and "psycopg" in installed, listed.stdout
    assert sorted(installed & RESPONDER_ONLY) == []
    for module in ("matplotlib", "jinja2"):
        result = run([python, "-c", f"import {module}"], workdir)
        assert result.returncode == 1 and f"No module named '{module}'" in result.stderr, result.stderr
    where = run([python, "-c", "import exporter; print(exporter.__file__)"], workdir)
    assert Path(where.stdout.strip()).is_relative_to(bin_dir.parent), where.stdout + where.stderr

    help_ = run([exporter, "--help"], workdir)
    assert help_.returncode == 0 and "--check-config" in help_.stdout, help_.stdout + help_.stderr
    config = workdir / "exporter.yml"
    config.write_text("targets:\n  - name: local\n    dsn: postgresql://pgwarden@127.0.0.1:5432/postgres\n")
    check = run([exporter, "--config", config, "--check-config"], workdir)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "configuration OK: 1 target(s)" in check.stdout, check.stdout
    assert "target local: 127.0.0.1:5432/postgres" in check.stdout, check.stdout
