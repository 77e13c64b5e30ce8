"""The layout of exporter/, responder/ and pgwarden/: no import cycle (any import counts), no module above 400 lines,
and each imports only the packages of ours its layer may (docs/ARCHITECTURE.md).

The cycle check is proven on small packages written to tmp_path: it must report a cycle however it is made.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from pathlib import Path

import grimp
import pytest

from tests import import_graph
from tests.import_graph import PACKAGES, ROOT

MAX_LINES = 400
# Of our top-level packages, what each installed one may import besides itself: pgwarden/ is shared and imports
# neither program, the programs never import each other, and none imports devtools/, bench/ or tests/ (which
# are not installed).
MAY_IMPORT = {"pgwarden": set(), "exporter": {"pgwarden"}, "responder": {"pgwarden"}}
OURS = {*PACKAGES, "devtools", "bench", "tests"}


@functools.cache
def _graph() -> grimp.ImportGraph:
    return import_graph.build()


def _cycles_in(graph: grimp.ImportGraph, package: str, root: Path = ROOT) -> list[str]:
    """Each cycle that goes through a module of `package`, described with its import statements."""
    return [
        import_graph.describe(graph, cycle, root)
        for cycle in import_graph.cycles(graph)
        if any(m == package or m.startswith(f"{package}.") for m in cycle)
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    found = _cycles_in(_graph(), package)
    assert not found, f"{len(found)} import cycle(s) through {package}/:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_above_400_lines(package: str) -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules above {MAX_LINES} lines: {too_long}"


def _imports_out_of_layer(package: str, root: Path = ROOT) -> list[str]:
    """Each import in `package` (anywhere: top level, function-local, TYPE_CHECKING) of a package of ours it may
    not import, as `path:line: module`."""
    allowed = {package, *MAY_IMPORT[package]}
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:  # a relative one stays in its package
                modules = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(root)}:{node.lineno}: {m}"
                for m in modules
                if m.split(".")[0] in OURS - allowed
            ]
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_stay_in_their_layer(package: str) -> None:
    found = _imports_out_of_layer(package)
    allowed = sorted(MAY_IMPORT[package])
    assert not found, f"{package}/ may import, of ours, only itself and {allowed}:\n" + "\n".join(found)


def test_an_import_out_of_its_layer_is_reported_wherever_it_is(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pgwarden/__init__.py": "",
            "pgwarden/a.py": TYPE_CHECKING_ONLY.replace("typing_only.a", "responder.app"),
            "pgwarden/b.py": FUNCTION_LOCAL.replace("local.a", "devtools.demo"),
            "pgwarden/c.py": "import json\nfrom pgwarden import a\nfrom . import b\n",
        },
    )
    assert _imports_out_of_layer("pgwarden", tmp_path) == [
        "pgwarden/a.py:7: responder.app",
        "pgwarden/b.py:3: devtools.demo",
    ]


def test_the_graph_is_of_this_tree() -> None:
    graph = _graph()
    for package in PACKAGES:
        expected = {
            ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for p in (ROOT / package).rglob("*.py")
        }
        assert {m for m in graph.modules if m.split(".")[0] == package} == expected


# --- the cycle check, on packages made for it ---------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _cycles(tmp_path: Path, package: str, files: dict[str, str]) -> list[import_graph.Cycle]:
    _write(tmp_path, {f"{package}/__init__.py": "", **files})
    return import_graph.cycles(import_graph.build([package], tmp_path))


FUNCTION_LOCAL = """
    def helper() -> None:
        from local.a import something  # not at the top: still an import

        something()
    """
TYPE_CHECKING_ONLY = """
    from __future__ import annotations

    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        from typing_only.a import A

    class B:
        def a(self) -> A: ...
    """
# Each way of making a cycle: the package's files, and the one cycle to be reported.
CYCLES = {
    "top-level imports": (
        {
            "plain/a.py": "from plain import b\n",
            "plain/b.py": "import plain.c\n",
            "plain/c.py": "from plain.a import X\n",
        },
        ("plain.a", "plain.b", "plain.c", "plain.a"),
    ),
    "only a function-local import": (
        {"local/a.py": "from local.b import helper\n", "local/b.py": FUNCTION_LOCAL},
        ("local.a", "local.b", "local.a"),
    ),
    "only a TYPE_CHECKING import": (
        {"typing_only/a.py": "from typing_only.b import B\n", "typing_only/b.py": TYPE_CHECKING_ONLY},
        ("typing_only.a", "typing_only.b", "typing_only.a"),
    ),
    # `from .sub import mod`, `from pkg.sub import mod` and `from .. import mod` import the submodules
    "relative imports and submodules imported by name": (
        {
            "rel/a.py": "from .sub import leaf\n",
            "rel/sub/__init__.py": "",
            "rel/sub/leaf.py": "from rel.sub import other\n",
            "rel/sub/other.py": "from .. import a\n",
        },
        ("rel.a", "rel.sub.leaf", "rel.sub.other", "rel.a"),
    ),
    "importing a package is importing its __init__": (
        {
            "pkg/__init__.py": "from pkg.api import run\n",
            "pkg/api.py": "def run() -> None:\n    import pkg\n",
        },
        ("pkg", "pkg.api", "pkg"),
    ),
}


@pytest.mark.parametrize("files, cycle", CYCLES.values(), ids=CYCLES.keys())
def test_reports_a_cycle_however_it_is_made(
    tmp_path: Path, files: dict[str, str], cycle: import_graph.Cycle
) -> None:
    assert _cycles(tmp_path, cycle[0].split(".")[0], files) == [cycle]


def test_no_cycle_is_reported_where_there_is_none(tmp_path: Path) -> None:
    """A package's `__init__` importing its modules, which import each other one way, is no cycle."""
    found = _cycles(
        tmp_path,
        "fine",
        {
            "fine/__init__.py": "from fine.a import A\nfrom fine.b import B\n",
            "fine/a.py": "from fine.b import B\n\nclass A(B): ...\n",
            "fine/b.py": "from fine import c\n\nclass B: ...\n",
            "fine/c.py": "import json\n",
        },
    )
    assert found == []


def test_a_failure_names_the_cycle_and_its_import_statements(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "shown/__init__.py": "",
            "shown/a.py": "import shown.b\n",
            "shown/b.py": "\n\nfrom shown import a\n",
        },
    )
    graph = import_graph.build(["shown"], tmp_path)
    assert _cycles_in(graph, "shown", tmp_path) == [
        "shown.a -> shown.b -> shown.a\n"
        "    shown/a.py:1: import shown.b\n"
        "    shown/b.py:3: from shown import a"
    ]
