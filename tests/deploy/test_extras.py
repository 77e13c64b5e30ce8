"""The install extras of pyproject.toml: each program installs what it imports, and the exporter nothing more.

Fast: an AST walk of each program's import closure (top-level and function-local imports, following
exporter/, pgwarden/ and responder/ modules; `if TYPE_CHECKING:` blocks never run, so they are left out) must
only reach distributions its requirements pull in (the requirements' own dependencies read from the installed
metadata), and each requirement must be imported by someone. Slow: `pip install '.[exporter]'` into a fresh
venv runs `pgwarden-exporter` without matplotlib or Jinja2, and the Makefile's install (`.[all,dev]`, editable)
prints no "Editable installation" notice but still shows errors.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.deploy.venvs import (
    PACKAGES,
    PIP_TIMEOUT,
    REPO,
    RESPONDER_ONLY,
    check_exporter_only,
    copy_source,
    fresh_venv,
    pip,
    run,
)

# --- pyproject.toml's requirements and what they pull in ---


@cache
def project() -> dict[str, object]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert isinstance(data, dict)
    return data


def declared(extra: str | None) -> list[Requirement]:
    """The base dependencies (extra=None) or one extra's own list."""
    if extra is None:
        raw = project()["dependencies"]
    else:
        extras = project()["optional-dependencies"]
        assert isinstance(extras, dict)
        raw = extras[extra]
    assert isinstance(raw, list)
    return [Requirement(r) for r in raw]


def requirements_of(extras: Iterable[str]) -> list[Requirement]:
    """Base + these extras, pgwarden's own extras (`all` = `pgwarden[exporter,responder]`) unfolded."""
    result = declared(None)
    pending = list(extras)
    while pending:
        for req in declared(pending.pop()):
            if canonicalize_name(req.name) == "pgwarden":
                pending += sorted(req.extras)
            else:
                result.append(req)
    return result


def pulled_in(requirements: Iterable[Requirement]) -> set[NormalizedName]:
    """The requirements and, through the installed distributions' metadata, everything they depend on."""
    seen: set[tuple[NormalizedName, str]] = set()
    names: set[NormalizedName] = set()
    pending = list(requirements)
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        names.add(name)
        for extra in sorted(req.extras) or [""]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            try:
                dist = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue  # not installed here: its own dependencies are unknown (an import of it fails below)
            for raw in dist.requires or []:
                sub = Requirement(raw)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    pending.append(sub)
    return names


# --- what the code imports ---


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node of the module except the bodies of `if TYPE_CHECKING:` (their `else:` does run)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.stmt) and is_type_checking(node):
            assert isinstance(node, ast.If)
            pending += node.orelse
        else:
            pending += ast.iter_child_nodes(node)


@cache
def imports_of(module: str) -> tuple[frozenset[str], tuple[tuple[str, int], ...]]:
    """(the project's modules `module` runs, the third-party top-level names it imports with their lines)."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[tuple[str, int]] = []
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.append((base, node.lineno))
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    internal: set[str] = set()
    external: list[tuple[str, int]] = []
    for name, line in names:
        top = name.split(".")[0]
        if top in PACKAGES:
            parts = name.split(".")  # importing a.b.c runs a, a.b and a.b.c
            internal |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules().keys()
        elif top not in sys.stdlib_module_names and top != "__future__":
            external.append((top, line))
    return frozenset(internal - {module}), tuple(sorted(set(external)))


def third_party_imports(roots: Iterable[str]) -> dict[str, list[str]]:
    """Top-level name -> ["file:line", ...] over the import closure of `roots`."""
    found: dict[str, list[str]] = {}
    done: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module in done:
            continue
        done.add(module)
        internal, external = imports_of(module)
        pending += internal
        where = modules()[module].relative_to(REPO)
        for top, line in external:
            found.setdefault(top, []).append(f"{where}:{line}")
    return found


@cache
def distribution_of(top: str) -> NormalizedName:
    providers = importlib.metadata.packages_distributions().get(top)
    assert providers, f"no installed distribution provides `{top}`: add it to pyproject.toml and install it"
    return canonicalize_name(providers[0])


def package_modules(package: str) -> list[str]:
    """All of a package's modules: the collectors and playbooks are found at run time, not imported by name."""
    return [m for m in modules() if m.split(".")[0] == package]


# Each program's code, and the extras a user installs for it.
PROGRAMS = {
    "exporter": (("exporter", "pgwarden"), ("exporter",)),
    "responder": (("responder", "pgwarden"), ("responder",)),
    "pgwarden": (("pgwarden",), ()),  # the shared code runs in both programs: base dependencies only
}


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_import_is_installed_by_the_programs_extra(program: str) -> None:
    packages, extras = PROGRAMS[program]
    allowed = pulled_in(requirements_of(extras))
    imported = third_party_imports(m for p in packages for m in package_modules(p))
    outside = {top: places for top, places in sorted(imported.items()) if distribution_of(top) not in allowed}
    assert not outside, (
        f"{program} imports what {', '.join(['the base dependencies', *extras])} do not install: {outside}"
    )


def test_the_exporter_installs_nothing_only_the_responder_uses() -> None:
    installed = pulled_in(requirements_of(["exporter"]))
    assert sorted(installed & RESPONDER_ONLY) == []
    assert pulled_in(requirements_of(["responder"])) >= RESPONDER_ONLY
    assert pulled_in(requirements_of(["all"])) == pulled_in(requirements_of(["exporter", "responder"]))


def test_every_requirement_is_imported_where_it_is_declared() -> None:
    """Base = what pgwarden/ or both programs import; an extra = what its program alone imports."""
    used = {
        program: {distribution_of(top) for top in third_party_imports(package_modules(program))}
        for program in PACKAGES
    }
    shared = used["pgwarden"] | used["exporter"] & used["responder"]
    base = [canonicalize_name(req.name) for req in declared(None)]
    assert [name for name in base if name not in shared] == [], "in the base but not used by both programs"
    for program, other in (("exporter", "responder"), ("responder", "exporter")):
        names = [canonicalize_name(req.name) for req in declared(program)]
        assert [n for n in names if n not in used[program]] == [], f"in [{program}] but not imported by it"
        assert [n for n in names if n in shared | used[other]] == [], f"in [{program}] but used by both"


def test_the_import_walk_sees_lazy_imports_and_skips_type_checking_blocks() -> None:
    # exporter/aws/clients.py imports boto3 inside a function and mypy_boto3_rds under TYPE_CHECKING.
    _, external = imports_of("exporter.aws.clients")
    names = {top for top, _ in external}
    assert "boto3" in names and "botocore" in names
    assert not any(n.startswith("mypy_boto3") for n in names)
    # responder/report/charts.py is reached from the responder's CLI through the project's own modules.
    assert "matplotlib" in third_party_imports(["responder.cli"])


# --- a fresh venv with only the exporter's extra ---


@pytest.mark.slow
def test_a_venv_with_only_the_exporter_extra_runs_the_exporter(tmp_path: Path) -> None:
    source = copy_source(tmp_path / "src")
    bin_dir = fresh_venv(tmp_path / "venv")
    started = time.monotonic()
    pip([bin_dir / "python", "-m", "pip", "install", f"{source}[exporter]"], tmp_path)  # pip's cache is used
    print(f"pip install '.[exporter]': {time.monotonic() - started:.1f}s")
    check_exporter_only(bin_dir, tmp_path)


# --- the Makefile's install (`make demo`, `make test`) ---


def makefile_install_commands() -> list[str]:
    """The pip commands of the Makefile's venv recipe (the one `make demo` and `make test` depend on)."""
    recipe = (REPO / "Makefile").read_text().split("\n$(STAMP): pyproject.toml\n", 1)[1]
    lines = [line.strip() for line in recipe.split("\n\n", 1)[0].splitlines() if line.startswith("\t")]
    return [line for line in lines if "-m pip install" in line]


def test_make_installs_both_programs_and_the_test_tools() -> None:
    *_, editable = makefile_install_commands()
    assert "-e '.[all,dev]'" in editable and " -q " in editable


@pytest.mark.slow
def test_the_makefile_install_prints_no_editable_banner_and_still_shows_errors(tmp_path: Path) -> None:
    source = copy_source(tmp_path / "src")
    python = fresh_venv(tmp_path / "venv") / "python"
    # The Makefile's own commands; the exporter's extra stands in for all,dev (the banner comes from the
    # editable build, whatever the extras), so the test downloads less.
    commands = [
        c.replace("$(PY)", str(python)).replace("'.[all,dev]'", "'.[exporter]'")
        for c in makefile_install_commands()
    ]
    output = "".join(pip(command, source) for command in commands)
    assert "Editable installation" not in output and "BuildBackendWarning" not in output, output
    where = run([python, "-c", "import exporter; print(exporter.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(source), where.stdout + where.stderr  # editable

    # An error of the build backend itself (setuptools rejects the name) is still shown.
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgwarden"', 'name = "pgwarden!"', 1))
    broken = run(["bash", "-c", commands[-1]], source, PIP_TIMEOUT)
    assert broken.returncode != 0
    assert "`project.name` must be pep508-identifier" in broken.stdout + broken.stderr, broken.stderr
