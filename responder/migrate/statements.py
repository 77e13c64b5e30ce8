"""A migration file's statements as PostgreSQL parses them (pglast), each with its line, whether it runs inside a
transaction block, what it risks on a large table and which tables it locks ACCESS EXCLUSIVE.

Nothing here talks to a database: `live` weighs the risks against the target's statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pglast import ast, parse_plpgsql, parse_sql
from pglast.enums.parsenodes import (
    AlterTableType,
    ConstrType,
    ObjectType,
    TransactionStmtKind,
    VariableSetKind,
)
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

ACCESS_EXCLUSIVE = 8  # LockStmt.mode: PostgreSQL's AccessExclusiveLock

_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)  # whitespace and comments before a statement

_OPENS = {TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START}
_CLOSES = {
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_PREPARE,
}

# ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE (PostgreSQL's AlterTableGetLockLevel); an
# ALTER TABLE with any other subcommand takes ACCESS EXCLUSIVE.
_LIGHTER = {
    AlterTableType.AT_SetStatistics,
    AlterTableType.AT_ClusterOn,
    AlterTableType.AT_DropCluster,
    AlterTableType.AT_SetRelOptions,
    AlterTableType.AT_ResetRelOptions,
    AlterTableType.AT_SetOptions,
    AlterTableType.AT_ResetOptions,
    AlterTableType.AT_ValidateConstraint,
    AlterTableType.AT_AttachPartition,
    AlterTableType.AT_EnableTrig,
    AlterTableType.AT_DisableTrig,
}


class SqlError(Exception):
    """A file PostgreSQL's parser refuses (or that is not text), with the line it stops at."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class TableRef:
    schema: str | None
    name: str

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @classmethod
    def of(cls, relation: ast.RangeVar | None) -> TableRef:
        assert relation is not None  # the grammar gives these statements a table
        return cls(relation.schemaname, relation.relname or "")


@dataclass(frozen=True, slots=True)
class SizeRisk:
    """What a statement does that matters only on a large table: an error above `large_table_rows`."""

    rule: str
    table: TableRef
    what: str  # what it does to the table, for the message
    functions: tuple[str, ...] = ()  # volatile-default: a risk only if one of these is volatile on the target
    filtered: bool = False  # unbatched-write with a WHERE: a risk only if the planner expects many rows


@dataclass(frozen=True, slots=True)
class Statement:
    path: Path
    line: int
    node: ast.Node
    in_transaction: bool
    wrapper: str | None  # the tool that runs this part of the file in a transaction of its own, if any
    size_risks: tuple[SizeRisk, ...]
    exclusive_tables: tuple[TableRef, ...]  # the tables it locks ACCESS EXCLUSIVE
    hidden: str | None = None  # what of it lint cannot read (a DO block's EXECUTE of a built string)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def prisma_wraps(path: Path) -> bool:
    """Prisma Migrate's layout (`migrations/<name>/migration.sql` beside `migration_lock.toml`): Prisma runs each
    such file in one transaction."""
    return path.name == "migration.sql" and (path.parent.parent / "migration_lock.toml").is_file()


# dbmate's sections: `-- migrate:up` and `-- migrate:down`, each run in a transaction unless `transaction:false`
_DBMATE_SECTION = re.compile(r"^--\s*migrate:(?:up|down)\b(?P<options>.*)$", re.MULTILINE)
_NO_TRANSACTION = re.compile(r"\btransaction:false\b")


def wrappers(path: Path, text: str) -> list[tuple[int, str | None]]:
    """(offset, wrapping tool or None) from each offset on: the file's sections and who wraps each one."""
    sections = [
        (m.start(), None if _NO_TRANSACTION.search(m["options"]) else "dbmate")
        for m in _DBMATE_SECTION.finditer(text)
    ]
    if sections:
        return [(0, None), *sections]
    return [(0, "Prisma" if prisma_wraps(path) else None)]


def parse_file(path: Path) -> list[Statement]:
    """The file's statements; raises `SqlError` naming the line PostgreSQL's parser stops at."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SqlError(path, exc.object.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
    try:
        raw_statements = parse_sql(text)
    except ParseError as exc:
        message, offset = (*exc.args, 0)[:2]
        offset = offset if isinstance(offset, int) else 0
        raise SqlError(path, line_of(text, offset), str(message)) from None
    sections = wrappers(path, text)
    section, wrapper, in_transaction = -1, None, False
    statements: list[Statement] = []
    for raw in raw_statements:
        node = raw.stmt
        if node is None:
            continue
        start = raw.stmt_location or 0
        match = _LEADING.match(text, start)
        begins = match.end() if match else start
        while section + 1 < len(sections) and sections[section + 1][0] <= begins:
            section += 1
            wrapper = sections[section][1]
            in_transaction = wrapper is not None
        if isinstance(node, ast.TransactionStmt):
            if node.kind in _OPENS:
                in_transaction = True
            elif node.kind in _CLOSES:
                in_transaction = wrapper is not None
        risks, exclusive = _risks(node)
        line = line_of(text, begins)
        inner, hidden = _do_body(node) if isinstance(node, ast.DoStmt) else ([], None)
        statements.append(Statement(path, line, node, in_transaction, wrapper, risks, exclusive, hidden))
        # a DO block's static SQL statements, at the block's line: a DO always runs in a transaction
        for sub in inner:
            statements.append(Statement(path, line, sub, True, wrapper or "a DO block", *_risks(sub)))
    return statements


def _do_body(node: ast.DoStmt) -> tuple[list[ast.Node], str | None]:
    """The statements a PL/pgSQL DO block runs as written, and what it runs that lint cannot read."""
    language = next((str(a.arg.sval) for a in node.args or () if a.defname == "language"), "plpgsql")
    if language.lower() != "plpgsql":
        return [], f"a DO block in {language}: lint cannot read what it runs"
    try:
        tree = parse_plpgsql(str(RawStream()(node)))
    except ParseError as exc:
        return [], f"a DO block PL/pgSQL's parser refuses ({exc}): lint cannot read what it runs"
    queries: list[str] = []
    dynamic = _walk_plpgsql(tree, queries)
    inner: list[ast.Node] = []
    for query in queries:
        try:
            inner.extend(raw.stmt for raw in parse_sql(query) if raw.stmt is not None)
        except ParseError:
            dynamic = True
    hidden = "a DO block EXECUTEs SQL built at run time: lint cannot read what it runs" if dynamic else None
    return inner, hidden


def _walk_plpgsql(tree: object, queries: list[str]) -> bool:
    """Collect the SQL statements of a PL/pgSQL parse tree (`PLpgSQL_stmt_execsql`); whether it EXECUTEs any
    dynamic SQL."""
    dynamic = False
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "PLpgSQL_stmt_execsql":
                queries.append(str(value["sqlstmt"]["PLpgSQL_expr"]["query"]))
            dynamic |= key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors")
            dynamic |= _walk_plpgsql(value, queries)
    elif isinstance(tree, list):
        for item in tree:
            dynamic |= _walk_plpgsql(item, queries)
    return dynamic


def is_concurrent(node: ast.Node) -> bool:
    """CREATE INDEX / DROP INDEX / REINDEX ... CONCURRENTLY: PostgreSQL refuses them in a transaction block."""
    if isinstance(node, ast.IndexStmt | ast.DropStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.ReindexStmt):
        return any(getattr(p, "defname", None) == "concurrently" for p in node.params or ())
    return False


class _Renames(Visitor):
    """`SET application_name = ...` or `set_config('application_name', ...)` anywhere in a statement."""

    found = False

    def visit_VariableSetStmt(self, ancestors: object, node: ast.VariableSetStmt) -> None:
        self.found |= node.name == "application_name" and node.kind == VariableSetKind.VAR_SET_VALUE

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:
        first = node.args[0] if node.args else None
        name = node.funcname[-1].sval if node.funcname else None
        self.found |= (
            name == "set_config"
            and isinstance(first, ast.A_Const)
            and getattr(first.val, "sval", None) == "application_name"
        )


def renames_session(node: ast.Node) -> bool:
    """Whether the statement sets the session's application_name (the watchdog finds the migration's sessions
    by the one PGAPPNAME gives them)."""
    visitor = _Renames()
    visitor(node)
    return visitor.found


class _Functions(Visitor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:
        if node.funcname:
            self.names.append(str(node.funcname[-1].sval))


def _functions(expr: ast.Node | None) -> tuple[str, ...]:
    if expr is None:
        return ()
    visitor = _Functions()
    visitor(expr)
    return tuple(dict.fromkeys(visitor.names))


def _alter_risks(stmt: ast.AlterTableStmt, table: TableRef) -> list[SizeRisk]:
    risks = []
    for cmd in stmt.cmds or ():
        if cmd.subtype == AlterTableType.AT_AlterColumnType:
            what = f"ALTER COLUMN {cmd.name} TYPE rewrites the table under an ACCESS EXCLUSIVE lock"
            risks.append(SizeRisk("alter-column-type", table, what))
        elif cmd.subtype == AlterTableType.AT_SetNotNull:
            what = f"SET NOT NULL on {cmd.name} scans the whole table under an ACCESS EXCLUSIVE lock"
            risks.append(SizeRisk("set-not-null", table, what))
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            for c in cmd.def_.constraints or ():
                functions = _functions(c.raw_expr) if c.contype == ConstrType.CONSTR_DEFAULT else ()
                if functions:
                    what = (
                        f"ADD COLUMN {cmd.def_.colname} with a volatile DEFAULT rewrites the table under an "
                        "ACCESS EXCLUSIVE lock"
                    )
                    risks.append(SizeRisk("volatile-default", table, what, functions=functions))
        elif cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            c = cmd.def_
            if c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN) and not c.skip_validation:
                what = (
                    "ADD CONSTRAINT without NOT VALID checks every row while holding its lock "
                    "(add it NOT VALID, then VALIDATE CONSTRAINT)"
                )
                risks.append(SizeRisk("constraint-not-valid", table, what))
            elif c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE) and not c.indexname:
                what = (
                    "ADD CONSTRAINT builds its index under an ACCESS EXCLUSIVE lock (CREATE UNIQUE INDEX "
                    "CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX)"
                )
                risks.append(SizeRisk("constraint-not-valid", table, what))
    return risks


def _risks(node: ast.Node) -> tuple[tuple[SizeRisk, ...], tuple[TableRef, ...]]:
    risks: list[SizeRisk] = []
    exclusive: list[TableRef] = []
    if isinstance(node, ast.IndexStmt) and not node.concurrent:
        what = "CREATE INDEX without CONCURRENTLY blocks every write to the table while it builds"
        risks.append(SizeRisk("create-index-blocking", TableRef.of(node.relation), what))
    elif isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        table = TableRef.of(node.relation)
        risks.extend(_alter_risks(node, table))
        if any(not _lighter(cmd) for cmd in node.cmds or ()):
            exclusive.append(table)
    elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
        table = TableRef.of(node.relation)
        if node.whereClause is None:
            what = f"{verb} of every row in one transaction (batch it: `migrate backfill`)"
            risks.append(SizeRisk("unbatched-write", table, what))
        else:
            what = f"{verb} in one transaction (batch it: `migrate backfill`)"
            risks.append(SizeRisk("unbatched-write", table, what, filtered=True))
    elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        exclusive.extend(TableRef(*_qualified(names)) for names in node.objects or ())
    elif isinstance(node, ast.TruncateStmt):
        exclusive.extend(TableRef.of(r) for r in node.relations or ())
    elif isinstance(node, ast.RenameStmt) and node.relation is not None:
        exclusive.append(TableRef.of(node.relation))
    elif isinstance(node, ast.LockStmt) and node.mode == ACCESS_EXCLUSIVE:
        exclusive.extend(TableRef.of(r) for r in node.relations or ())
    elif isinstance(node, ast.ClusterStmt) and node.relation is not None:
        exclusive.append(TableRef.of(node.relation))
    elif isinstance(node, ast.VacuumStmt) and any(o.defname == "full" for o in node.options or ()):
        exclusive.extend(TableRef.of(r.relation) for r in node.rels or () if r.relation is not None)
    return tuple(risks), tuple(exclusive)


def _lighter(cmd: ast.AlterTableCmd) -> bool:
    if cmd.subtype in _LIGHTER:
        return True
    # a foreign key takes SHARE ROW EXCLUSIVE on both tables
    return (
        cmd.subtype == AlterTableType.AT_AddConstraint
        and isinstance(cmd.def_, ast.Constraint)
        and cmd.def_.contype == ConstrType.CONSTR_FOREIGN
    )


def _qualified(names: tuple[ast.String, ...]) -> tuple[str | None, str]:
    parts = [n.sval for n in names]
    return (parts[-2] if len(parts) > 1 else None), str(parts[-1])
