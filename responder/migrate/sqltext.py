"""What an operator gives `migrate backfill` as SQL, checked with PostgreSQL's own parser (pglast).

`--table` is a (schema-qualified) table name and the column of `--set` an identifier: they reach SQL only as
`psycopg.sql.Identifier`. `--set`'s expression and `--where` are SQL by design (the operator's), but each must be
exactly one expression: no statement, no `;`, no extra clause (`WHERE`, `FROM`, `RETURNING`, `GROUP BY` ...),
no write or transaction control nested in a subquery.
What is executed is the expression as the parser read it, deparsed, never the text as given: a comment or a
clause smuggled in cannot survive the round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast, visitors
from pglast.parser import ParseError, scan
from pglast.stream import RawStream
from psycopg import sql

SEMICOLON = "ASCII_59"


class SqlRefused(ValueError):
    """The text is not the one table, column or expression it must be: why, for the operator."""


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Assignment:
    column: str
    expression: str  # deparsed: one expression


def _deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


def _one(text: str, prefix: str, what: str) -> ast.Node:
    """The single statement `prefix + text` parses to; SqlRefused for a `;` or anything but one statement."""
    if not text.strip():
        raise SqlRefused(f"{what} is empty")
    try:
        tokens = scan(text)
        statements = pglast.parse_sql(prefix + text)
    except ParseError as exc:
        raise SqlRefused(f"{what} is not valid SQL: {exc}") from None
    if any(token.name == SEMICOLON for token in tokens):
        raise SqlRefused(f"{what} must not contain ';': one expression, not statements")
    if len(statements) != 1:
        raise SqlRefused(f"{what} must be one expression, not statements")
    stmt = statements[0].stmt
    assert stmt is not None
    return stmt


# What no expression of a backfill may hold, even in a subquery: a write (PostgreSQL refuses a data-modifying
# WITH below the top level anyway; refused here before anything is journaled), a transaction or a savepoint.
FORBIDDEN = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt, ast.TransactionStmt)


class _Statements(visitors.Visitor):
    def __init__(self) -> None:
        self.found: list[str] = []

    def visit(self, ancestors: Any, node: ast.Node) -> None:
        if isinstance(node, FORBIDDEN):
            self.found.append(type(node).__name__)


def _no_statement_inside(node: ast.Node, what: str) -> None:
    finder = _Statements()
    finder(node)
    if finder.found:
        raise SqlRefused(f"{what} must be an expression: it holds a statement ({finder.found[0]})")


def _same(given: ast.Node, rebuilt: str, what: str) -> None:
    """Refuse unless `given` is, clause for clause, the statement `rebuilt` (the part we understood)."""
    try:
        (again,) = pglast.parse_sql(rebuilt)
    except (ParseError, ValueError):
        raise SqlRefused(f"{what} could not be read back as one expression") from None
    assert again.stmt is not None
    if _deparse(given) != _deparse(again.stmt):
        raise SqlRefused(f"{what} holds more than one expression (a clause or statement)")


def parse_table(text: str) -> Relation:
    """`schema.table` (or `table`, in `public`): a table name, quoted as SQL quotes it."""
    stmt = _one(text, "SELECT FROM ", "--table")
    if not isinstance(stmt, ast.SelectStmt) or not stmt.fromClause or len(stmt.fromClause) != 1:
        raise SqlRefused("--table must name one table")
    rel = stmt.fromClause[0]
    if not isinstance(rel, ast.RangeVar) or rel.catalogname:
        raise SqlRefused("--table must name one table as schema.table")
    relation = Relation(rel.schemaname or "public", str(rel.relname))
    rebuilt = sql.SQL("SELECT FROM {}").format(sql.Identifier(relation.name))
    if rel.schemaname:
        rebuilt = sql.SQL("SELECT FROM {}").format(relation.identifier())
    _same(stmt, rebuilt.as_string(None), "--table")
    return relation


def parse_assignment(text: str) -> Assignment:
    """`COLUMN = EXPRESSION`: one column (no subscript or field), one expression."""
    stmt = _one(text, "UPDATE pgwarden_checked SET ", "--set")
    if not isinstance(stmt, ast.UpdateStmt) or not stmt.targetList or len(stmt.targetList) != 1:
        raise SqlRefused("--set must assign one column: COLUMN = EXPRESSION")
    target = stmt.targetList[0]
    if not isinstance(target, ast.ResTarget) or target.indirection or target.name is None:
        raise SqlRefused("--set must assign one whole column: COLUMN = EXPRESSION")
    if target.val is None or isinstance(target.val, ast.MultiAssignRef | ast.SetToDefault):
        raise SqlRefused("--set must assign one expression to one column")
    _no_statement_inside(target.val, "--set")
    expression = _deparse(target.val)
    column = sql.Identifier(str(target.name)).as_string(None)
    _same(stmt, f"UPDATE pgwarden_checked SET {column} = {expression}", "--set")
    return Assignment(str(target.name), expression)


def parse_condition(text: str) -> str:
    """`--where`: one boolean expression, deparsed."""
    stmt = _one(text, "SELECT WHERE ", "--where")
    if not isinstance(stmt, ast.SelectStmt) or stmt.whereClause is None:
        raise SqlRefused("--where must be one condition")
    _no_statement_inside(stmt.whereClause, "--where")
    condition = _deparse(stmt.whereClause)
    _same(stmt, f"SELECT WHERE {condition}", "--where")
    return condition
