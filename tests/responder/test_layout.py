"""The responder's module layout: no import cycle, playbooks that depend on the core only, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "responder"
MAX_LINES = 400
# What a playbook module may import of the responder: the core and what it names.
PLAYBOOK_IMPORTS = {
    "responder.core",
    "responder.outcomes",
    "responder.rds_guards",
    "responder.report",
    "responder.effects",
}
# ... and the restore engine restore_drill shares with `recover` (it imports only the core and aws).
PLAYBOOK_IMPORTS |= {"responder.drills", *(f"responder.drills.{m}" for m in ("checks", "engine", "models"))}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each responder module and the responder modules it imports (TYPE_CHECKING imports included)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("responder"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("responder"))
        graph[name] = found
    return {name: {m for m in found if m in graph and m != name} for name, found in graph.items()}


def test_no_import_cycle() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_playbooks_import_only_the_core() -> None:
    graph = _imports()
    for name, deps in graph.items():
        if name.startswith("responder.playbooks."):
            assert deps <= PLAYBOOK_IMPORTS, f"{name} imports {sorted(deps - PLAYBOOK_IMPORTS)}"


def test_no_module_above_400_lines() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= MAX_LINES, path


# What changes something outside the process, and the one module allowed to do each (responder/effects.py is the
# gate). boto3 clients are made only by pgwarden/aws.py's factory, outside the responder; of the responder only
# responder/aws.py uses that factory, and it guards every client it makes so a mutating call must pass the gate.
ONLY_IN = {
    "create_subprocess_exec": "responder/effects.py",
    "create_subprocess_shell": "responder/effects.py",
    "subprocess": "responder/effects.py",
    "os.system": "responder/effects.py",
    "boto3": "pgwarden/aws.py",
    "boto3.client": "pgwarden/aws.py",
    "session.client": "pgwarden/aws.py",
    "_session.client": "pgwarden/aws.py",
    "create_client": "pgwarden/aws.py",  # botocore's own
    "pgwarden.aws": "responder/aws.py",
}


def test_effects_and_clients_are_made_in_one_place() -> None:
    root = PACKAGE.parent
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute):
                base = node.value
                prefix = (
                    base.id
                    if isinstance(base, ast.Name)
                    else base.attr
                    if isinstance(base, ast.Attribute)
                    else ""
                )
                name = f"{prefix}.{node.attr}"
                if node.attr in ONLY_IN:
                    name = node.attr
            elif isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom):  # `from pgwarden import aws` imports pgwarden.aws
                    modules = [node.module or "", *(f"{node.module}.{m}" for m in modules)]
                name = next((k for m in modules for k in ONLY_IN if m == k or m.startswith(f"{k}.")), None)
            if name in ONLY_IN:
                where = str(path.relative_to(root))
                assert where == ONLY_IN[name], f"{where}:{getattr(node, 'lineno', '?')} uses {name}"


def test_signals_and_vacuum_go_through_the_gate() -> None:
    """A playbook that signals a backend or runs VACUUM does so inside `ctx.gate.postgres(...)`."""
    for path in (PACKAGE / "playbooks").glob("*.py"):
        text = path.read_text()
        if "pg_cancel_backend" in text or "pg_terminate_backend" in text or "VACUUM (" in text:
            assert "ctx.gate.postgres(" in text, path
