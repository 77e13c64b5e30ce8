"""The install extras of pyproject.toml: each program installs what it imports, and the exporter nothing more.

Fast: each program's import closure (grimp's import graph: top-level and function-local imports, following
exporter/, pgwarden/ and responder/ modules; `if TYPE_CHECKING:` blocks never run, so they are left out) must
only reach distributions its requirements pull in (the requirements' own dependencies read from the installed
metadata), and each requirement must be imported by someone. Slow: `pip install '.[exporter]'` into a fresh
venv runs `pgwarden-exporter` without matplotlib or Jinja2, and the Makefile's install (`.[all,dev]`, editable)
prints no "Editable installation" notice but still shows errors.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import time
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import grimp
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


@cache
def graph() -> grimp.ImportGraph:
    """Every import of our packages, function-local ones too, read by grimp; `if TYPE_CHECKING:` blocks never
    run, so they are left out. Third-party packages are single nodes, named by their top-level module."""
    for package in PACKAGES:  # this checkout's packages, not an installed copy
        spec = importlib.util.find_spec(package)
        assert spec is not None and list(spec.submodule_search_locations or []) == [str(REPO / package)]
    return grimp.build_graph(
        *PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


def is_ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def source_of(module: str) -> Path:
    path = REPO.joinpath(*module.split("."))
    return (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(REPO)


def third_party_imports(roots: Iterable[str]) -> dict[str, list[str]]:
    """Top-level name -> ["file:line", ...] of every third-party import the modules `roots` run."""
    ours: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module not in ours:
            ours.add(module)
            parts = module.split(".")  # importing a.b.c runs a and a.b first
            pending += [".".join(parts[:i]) for i in range(1, len(parts))]
            pending += filter(is_ours, graph().find_modules_directly_imported_by(module))
    found: dict[str, list[str]] = {}
    for module in sorted(ours):
        for imported in sorted(graph().find_modules_directly_imported_by(module)):
            if is_ours(imported) or imported in sys.stdlib_module_names or imported == "__future__":
                continue
            for detail in graph().get_import_details(importer=module, imported=imported):
                found.setdefault(imported, []).append(f"{source_of(module)}:{detail['line_number']}")
    return found


@cache
def distribution_of(top: str) -> NormalizedName:
    providers = importlib.metadata.packages_distributions().get(top)
    assert providers, f"no installed distribution provides `{top}`: add it to pyproject.toml and install it"
    return canonicalize_name(providers[0])


def package_modules(package: str) -> list[str]:
    """All of a package's modules: the collectors and playbooks are found at run time, not imported by name."""
    return sorted(m for m in graph().modules if m.split(".")[0] == package)


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


# Distributions a program runs as an executable instead of importing, and the module that finds the executable
# through the distribution's name.
EXECUTABLES = {"squawk-cli": ("responder", "responder/migrate/squawk.py")}


def test_every_requirement_is_imported_where_it_is_declared() -> None:
    """Base = what pgwarden/ or both programs import; an extra = what its program alone imports (or runs, for
    the EXECUTABLES)."""
    used = {
        program: {distribution_of(top) for top in third_party_imports(package_modules(program))}
        for program in PACKAGES
    }
    for name, (program, module) in EXECUTABLES.items():
        assert f'"{name}"' in (REPO / module).read_text(), f"{module} does not look {name} up"
        used[program].add(canonicalize_name(name))
    shared = used["pgwarden"] | used["exporter"] & used["responder"]
    base = [canonicalize_name(req.name) for req in declared(None)]
    assert [name for name in base if name not in shared] == [], "in the base but not used by both programs"
    for program, other in (("exporter", "responder"), ("responder", "exporter")):
        names = [canonicalize_name(req.name) for req in declared(program)]
        assert [n for n in names if n not in used[program]] == [], f"in [{program}] but not imported by it"
        assert [n for n in names if n in shared | used[other]] == [], f"in [{program}] but used by both"


def test_the_import_walk_sees_lazy_imports_and_skips_type_checking_blocks() -> None:
    # exporter/aws/clients.py imports mypy_boto3_rds under TYPE_CHECKING; the factory it uses (pgwarden/aws.py)
    # imports boto3 inside a function.
    found = third_party_imports(["exporter.aws.clients"])
    assert "pgwarden/aws.py:51" in found["boto3"]
    assert not any(name.startswith("mypy_boto3") for name in found)
    # responder/report/charts.py is reached from the responder's CLI through the project's own modules.
    assert "matplotlib" in third_party_imports(["responder.cli"])
    expected = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (path for package in PACKAGES for path in (REPO / package).rglob("*.py"))
    }
    assert {m for m in graph().modules if is_ours(m)} == expected


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
