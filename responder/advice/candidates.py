"""Candidate B-tree indexes of one statement, from the columns its filters, joins and ORDER BY use (pglast):
single columns, and multi-column ones with the equality columns first (then one range column, or the ordering,
or a join column). A candidate an existing index already serves (the same leading columns) is dropped, and so
is any on a table too small to matter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.enums.parsenodes import A_Expr_Kind

from responder.advice.catalog import Catalog, Table
from responder.advice.statements import parse_one, walk

MAX_COLUMNS = 3
_EQUALITY_OPS = {"="}
_RANGE_OPS = {"<", ">", "<=", ">=", "~~", "~~*"}
_RANGE_KINDS = {
    A_Expr_Kind.AEXPR_BETWEEN,
    A_Expr_Kind.AEXPR_NOT_BETWEEN,
    A_Expr_Kind.AEXPR_BETWEEN_SYM,
    A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM,
    A_Expr_Kind.AEXPR_LIKE,
}


@dataclass(frozen=True, slots=True, order=True)
class Candidate:
    """A B-tree index on `columns` (in order) of one table."""

    schema: str
    table: str
    columns: tuple[str, ...]


@dataclass
class Uses:
    """How one statement uses one table's columns, each list in the statement's order."""

    equality: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def add(self, kind: list[str], column: str) -> None:
        if column not in kind:
            kind.append(column)


def _unwrap(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


class _Resolver:
    """Column references to (table, column): by alias or table name, or (unqualified) the one table that has
    a column of that name."""

    def __init__(self, tree: ast.Node, catalog: Catalog) -> None:
        self.catalog = catalog
        self.by_name: dict[str, Table] = {}
        for node in walk(tree):
            if isinstance(node, ast.RangeVar) and node.relname:
                table = catalog.resolve(node.schemaname, node.relname)
                if table is not None:
                    alias = node.alias.aliasname if node.alias is not None else None
                    self.by_name[alias or node.relname] = table

    @property
    def tables(self) -> set[Table]:
        return set(self.by_name.values())

    def column(self, node: Any) -> tuple[Table, str] | None:
        node = _unwrap(node)
        if not isinstance(node, ast.ColumnRef):
            return None
        fields = node.fields or ()
        names = [f.sval or "" for f in fields if isinstance(f, ast.String)]
        if len(names) != len(fields) or not names:
            return None  # a star
        if len(names) >= 2:
            table = self.by_name.get(names[-2])
            return (table, names[-1]) if table is not None else None
        owners = {
            t for t in self.by_name.values() if names[0] in self.catalog.columns.get((t.schema, t.name), ())
        }
        return (owners.pop(), names[0]) if len(owners) == 1 else None


def _predicates(node: Any) -> list[Any]:
    """The conjuncts of a WHERE or ON clause (an OR is left out: one B-tree does not serve it)."""
    if isinstance(node, ast.BoolExpr):
        if node.boolop == 0:  # AND
            return [p for arg in node.args or () for p in _predicates(arg)]
        return []
    return [node] if node is not None else []


def uses(text: str, catalog: Catalog) -> dict[Table, Uses]:
    """Per table the statement names, the columns it filters, joins and orders by."""
    tree = parse_one(text)
    resolver = _Resolver(tree, catalog)
    found: dict[Table, Uses] = {}

    def note(column: tuple[Table, str] | None, kind: str) -> None:
        if column is not None:
            table_uses = found.setdefault(column[0], Uses())
            table_uses.add(getattr(table_uses, kind), column[1])

    clauses: list[Any] = []
    orderings: list[Any] = []
    for node in walk(tree):
        if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
            clauses.append(node.whereClause)
        if isinstance(node, ast.JoinExpr):
            clauses.append(node.quals)
        if isinstance(node, ast.SelectStmt):
            orderings.extend(node.sortClause or ())
    for clause in clauses:
        for predicate in _predicates(clause):
            if isinstance(predicate, ast.NullTest):
                note(resolver.column(predicate.arg), "equality")
                continue
            if not isinstance(predicate, ast.A_Expr):
                continue
            op = predicate.name[-1].sval if predicate.name else ""
            left, right = resolver.column(predicate.lexpr), resolver.column(predicate.rexpr)
            if predicate.kind == A_Expr_Kind.AEXPR_OP and op in _EQUALITY_OPS and left and right:
                if left[0] != right[0]:
                    note(left, "join")
                    note(right, "join")
                continue
            column = left or right
            if predicate.kind == A_Expr_Kind.AEXPR_IN or (
                predicate.kind == A_Expr_Kind.AEXPR_OP and op in _EQUALITY_OPS
            ):
                note(column, "equality")
            elif predicate.kind in _RANGE_KINDS or (
                predicate.kind == A_Expr_Kind.AEXPR_OP and op in _RANGE_OPS
            ):
                note(column, "range")
    for sort in orderings:
        if isinstance(sort, ast.SortBy):
            note(resolver.column(sort.node), "order")
    return found


def _column_sets(use: Uses) -> list[tuple[str, ...]]:
    eq = tuple(use.equality[:MAX_COLUMNS])
    sets: list[tuple[str, ...]] = [(c,) for c in (*use.equality, *use.range, *use.join, *use.order)]
    if len(eq) > 1:
        sets.append(eq)
    if eq:
        sets += [(*eq, c)[:MAX_COLUMNS] for c in (*use.range[:1], *use.join)]
        if use.order:
            sets.append((*eq, *use.order)[:MAX_COLUMNS])
    if len(use.order) > 1:
        sets.append(tuple(use.order[:MAX_COLUMNS]))
    if use.range and use.order and use.range[0] != use.order[0]:
        sets.append((use.range[0], use.order[0]))
    return list(dict.fromkeys(s for s in sets if len(set(s)) == len(s)))


def covered(columns: tuple[str, ...], existing: list[tuple[str | None, ...]], equality: list[str]) -> bool:
    """An existing index has the same leading columns (in any order when they are all equality columns)."""
    n = len(columns)
    for index in existing:
        leading = index[:n]
        if leading == columns:
            return True
        if len(leading) == n and set(leading) == set(columns) and set(columns) <= set(equality):
            return True
    return False


def candidates(text: str, catalog: Catalog, min_rows: float) -> list[Candidate]:
    """The candidate indexes of one statement on tables over `min_rows` rows, existing ones left out."""
    found: list[Candidate] = []
    for table, use in uses(text, catalog).items():
        if table.rows < min_rows:
            continue
        existing = catalog.indexes.get((table.schema, table.name), [])
        for columns in _column_sets(use):
            if not covered(columns, existing, use.equality):
                found.append(Candidate(table.schema, table.name, columns))
    return found


def tables_of(text: str, catalog: Catalog) -> set[tuple[str, str]]:
    """The (schema, table) pairs a statement names (that exist)."""
    return {(t.schema, t.name) for t in _Resolver(parse_one(text), catalog).tables}
