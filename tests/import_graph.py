"""The import graph of our packages, read from their source by grimp, and the import cycles in it.

Every import statement counts: at the top of a module, inside a function, under `if TYPE_CHECKING:`. Importing
`pkg.mod.name` where `name` is a submodule is importing that submodule; importing a package is importing its
`__init__`; relative imports are resolved. (Importing `pkg.mod` also runs `pkg/__init__.py` first, but that is
not counted as an import of the package: a package's `__init__` may import its own modules.)
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exporter", "responder", "pgwarden")

Cycle = tuple[str, ...]  # modules, the first repeated at the end: a -> b -> a


def build(packages: Sequence[str] = PACKAGES, root: Path = ROOT) -> grimp.ImportGraph:
    """The graph of the imports between the modules of `packages`, each a directory of `root`."""
    with _first_on_path(root):
        for package in packages:
            spec = importlib.util.find_spec(package)
            found = list(spec.submodule_search_locations or []) if spec is not None else []
            if found != [str(root / package)]:  # an installed copy, or one imported from elsewhere
                raise RuntimeError(f"package {package} is found at {found}, not in {root}")
        return grimp.build_graph(*packages, exclude_type_checking_imports=False, cache_dir=None)


@contextmanager
def _first_on_path(root: Path) -> Iterator[None]:
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))


def cycles(graph: grimp.ImportGraph) -> list[Cycle]:
    """Each shortest cycle through an import, once, shortest first: an empty list when the graph has none."""
    found: set[Cycle] = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                ring = (module, *back[:-1])
                start = ring.index(min(ring))  # the same cycle found from any of its imports
                found.add((*ring[start:], *ring[:start], ring[start]))
    return sorted(found, key=lambda c: (len(c), c))


def describe(graph: grimp.ImportGraph, cycle: Cycle, root: Path = ROOT) -> str:
    """The cycle, and the import statement behind each of its steps (path:line: statement)."""
    lines = [" -> ".join(cycle)]
    for importer, imported in itertools.pairwise(cycle):
        base = Path(*importer.split("."))
        path = base / "__init__.py" if (root / base).is_dir() else base.with_suffix(".py")
        for detail in graph.get_import_details(importer=importer, imported=imported):
            lines.append(f"    {path}:{detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines)
