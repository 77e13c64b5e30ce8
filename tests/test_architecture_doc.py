"""docs/ARCHITECTURE.md names only what exists.

Every repository path it writes in backticks (`exporter/scrape.py`, `responder/journal/`, `pyproject.toml`) is a
file or directory of this tree; every `.py` file its diagrams name (`dispatcher.py`, `drills/{engine,checks}.py`)
is one too, somewhere. Every `name()` it writes, in the text or in a diagram, is defined in the code: a function
or class (`decisions_for()`), a class's method (`Dispatcher.intake()`), or either qualified by its module
(`assemble.scheduled_collectors()`).
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from pathlib import Path

from tests.import_graph import ROOT

DOC = ROOT / "docs" / "ARCHITECTURE.md"
SOURCES = ("exporter", "responder", "pgwarden", "devtools", "bench")

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"[\w.-]+(/[\w.-]+)*/?")
FILE_TYPES = (".py", ".md", ".yml", ".yaml", ".toml")
CALL = re.compile(r"\b[A-Za-z_][\w.]*\(\)")
DIAGRAM_FILE = re.compile(r"[\w/{},]+\.py\b")


def _mentions(text: str) -> tuple[set[str], set[str], set[str]]:
    """What the doc names: repository paths (in backticks), `.py` files of its diagrams, and calls `name()`."""
    diagrams = FENCE.findall(text)
    prose = FENCE.sub("", text)
    spans = SPAN.findall(prose)
    paths = {
        s
        for s in spans
        if REPO_PATH.fullmatch(s) and not s.startswith(".") and ("/" in s or s.endswith(FILE_TYPES))
    }
    diagram_files = {f for block in diagrams for token in DIAGRAM_FILE.findall(block) for f in _expand(token)}
    calls = {c[:-2] for chunk in [*spans, *diagrams] for c in CALL.findall(chunk)}
    return paths, diagram_files, calls


def _expand(token: str) -> list[str]:
    """`drills/{engine,checks}.py` -> `drills/engine.py`, `drills/checks.py`."""
    parts = re.split(r"\{([^}]*)\}", token)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


@functools.cache
def _defined(root: Path = ROOT, packages: tuple[str, ...] = SOURCES) -> frozenset[str]:
    """Every function, class and method of the packages, as `name`, `Class.name`, and each of those qualified by
    the tail of its module's name (`assemble.resolve_targets`, `exporter.assemble.resolve_targets`)."""
    names: set[str] = set()
    for package in packages:
        for path in (root / package).rglob("*.py"):
            module = path.relative_to(root).with_suffix("").parts
            module = module[:-1] if module[-1] == "__init__" else module
            for node in ast.parse(path.read_text()).body:
                found = []
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    found.append(node.name)
                if isinstance(node, ast.ClassDef):
                    methods = [
                        m.name for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                    ]
                    names.update(methods)  # a method named on its own, where the text says whose it is
                    found += [f"{node.name}.{m}" for m in methods]
                for name in found:
                    names.add(name)
                    names.update(".".join((*module[i:], name)) for i in range(len(module)))
    return frozenset(names)


def _missing(text: str, root: Path = ROOT, packages: tuple[str, ...] = SOURCES) -> list[str]:
    paths, diagram_files, calls = _mentions(text)
    files = [str(p.relative_to(root)) for package in packages for p in (root / package).rglob("*.py")]
    missing = [f"path {p}" for p in sorted(paths) if not (root / p).exists()]
    missing += [
        f"diagram file {f}"
        for f in sorted(diagram_files)
        if not any(g == f or g.endswith(f"/{f}") for g in files)
    ]
    missing += [f"{c}()" for c in sorted(calls) if c not in _defined(root, packages)]
    return missing


def test_everything_the_map_names_exists() -> None:
    text = DOC.read_text()
    paths, diagram_files, calls = _mentions(text)
    assert len(paths) > 50 and len(diagram_files) > 30 and len(calls) > 50  # the map is read, not skipped
    assert _missing(text) == []


def test_a_name_or_path_that_is_gone_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "mod.py").write_text(
        "def here(): ...\n\nclass Thing:\n    async def act(self): ...\n"
    )
    (tmp_path / "README.md").write_text("")
    doc = """
`pkg/sub/mod.py`, `README.md`, `pkg/sub/`, `here()`, `Thing.act()`, `mod.Thing()`, `sub.mod.here()`;
`pkg/gone.py`, `GONE.md`, `gone()`, `Thing.gone()`, `other.here()`, `/metrics`, `pgwarden[all]`, `x.y`.
```
sub/mod.py {mod,gone}.py  here() Nothing.act()
```
"""
    assert _missing(doc, tmp_path, ("pkg",)) == [
        "path GONE.md",
        "path pkg/gone.py",
        "diagram file gone.py",
        "Nothing.act()",
        "Thing.gone()",
        "gone()",
        "other.here()",
    ]
