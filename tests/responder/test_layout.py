"""The responder's module layout: playbooks that depend on the core only, effects made in their modules.

No import cycle and no module above 400 lines, in all three packages: tests/test_layout.py.
"""

from __future__ import annotations

import ast
import re

from tests import import_graph

PACKAGE = import_graph.ROOT / "responder"
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
# ... and the batching core purge_rows shares with `migrate backfill`: table names parsed with pglast, the
# single-column primary key found (it imports psycopg and pglast only).
PLAYBOOK_IMPORTS |= {"responder.migrate", "responder.migrate.batches", "responder.migrate.sqltext"}
# ... and the advisor index_advice shares with `advise` (it imports psycopg, pglast and pgwarden only).
PLAYBOOK_IMPORTS |= {"responder.advice", *(f"responder.advice.{m}" for m in ("advisor", "model"))}


def test_playbooks_import_only_the_core() -> None:
    """Any import counts (function-local and TYPE_CHECKING ones too); of our packages, only the responder's."""
    graph = import_graph.build()
    playbooks = [m for m in graph.modules if m.startswith("responder.playbooks.")]
    assert playbooks
    for name in playbooks:
        deps = {m for m in graph.find_modules_directly_imported_by(name) if m.split(".")[0] == "responder"}
        assert deps <= PLAYBOOK_IMPORTS, f"{name} imports {sorted(deps - PLAYBOOK_IMPORTS)}"


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


def test_only_the_journal_names_its_tables() -> None:
    """The journal owns its tables: their SQL (any text naming one) is in responder/journal/ and nowhere else."""
    journal = PACKAGE / "journal"
    source = "\n".join(path.read_text() for path in journal.glob("*.py"))
    tables = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", source))
    tables |= set(re.findall(r'^VERSION_TABLE = "(\w+)"', source, re.M))
    assert {"pgwarden_actions", "pgwarden_replicas", "pgwarden_journal_schema"} <= tables
    root = PACKAGE.parent
    outside = [
        f"{path.relative_to(root)}: {table}"
        for package in import_graph.PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if journal not in path.parents
        for table in sorted(tables)
        if re.search(rf"\b{table}\b", path.read_text())
    ]
    assert not outside, outside
