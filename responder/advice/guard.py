"""What planning a statement could run of the database's own code, and the statements refused for it.

The planner evaluates an IMMUTABLE function whose arguments are constants (a STABLE one too, to estimate a
filter's selectivity) and inlines SQL functions, so a user's function can run inside EXPLAIN, as the advisor's
role. The read-only transaction stops its writes and the statement timeout its sleep, but not a signal to
another backend, an advisory lock or a call out (dblink). So a statement is not planned when it may reach a
function that is neither built in nor an extension's: by calling it, through an operator, a cast or a domain
made of it, or through a relation whose view definition, column default, column type, constraint, policy, index
expression or statistics object uses it (views over such a relation included). Names are matched in every schema, whatever the search_path: a refusal too many, never one
too few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import ast

from responder.advice.statements import parse_one, walk

# Built-in functions that run a query, read relations named at run time or coerce text to a named type: a
# STABLE one with constant arguments is evaluated while estimating a filter (`schema_to_xml(current_schema(),
# ...)` reads every view of the schema, and so runs the functions they call).
RUN_TIME_READERS = frozenset(
    f"{what}_to_{form}"
    for what in ("query", "cursor", "table", "schema", "database")
    for form in ("xml", "xmlschema", "xml_and_xmlschema")
) | {"ts_stat", "ts_rewrite", "pg_input_is_valid", "pg_input_error_info"}

UNSAFE_SQL = b"""
WITH RECURSIVE unsafe AS (
  SELECT p.oid, p.proname FROM pg_proc p
  WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
    AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                    AND e.deptype = 'e')
), uses AS (
  SELECT d.classid, d.objid FROM pg_depend d
  WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM unsafe)
), types(oid) AS (  -- a cast made of one, a domain whose default or check uses one
  SELECT unnest(ARRAY[c.castsource, c.casttarget]) FROM pg_cast c WHERE c.castfunc IN (SELECT oid FROM unsafe)
  UNION SELECT u.objid FROM uses u WHERE u.classid = 'pg_type'::regclass
  UNION SELECT c.contypid FROM pg_constraint c JOIN uses u ON u.classid = 'pg_constraint'::regclass
    AND u.objid = c.oid WHERE c.contypid <> 0
), tainted(relid) AS (
  SELECT r.ev_class FROM pg_rewrite r JOIN uses u ON u.classid = 'pg_rewrite'::regclass AND u.objid = r.oid
  UNION SELECT a.adrelid FROM pg_attrdef a JOIN uses u ON u.classid = 'pg_attrdef'::regclass AND u.objid = a.oid
  UNION SELECT c.conrelid FROM pg_constraint c JOIN uses u ON u.classid = 'pg_constraint'::regclass
    AND u.objid = c.oid WHERE c.conrelid <> 0
  UNION SELECT p.polrelid FROM pg_policy p JOIN uses u ON u.classid = 'pg_policy'::regclass AND u.objid = p.oid
  UNION SELECT a.attrelid FROM pg_attribute a JOIN types t ON t.oid = a.atttypid WHERE a.attnum > 0
  UNION SELECT i.indrelid FROM pg_index i JOIN uses u ON u.classid = 'pg_class'::regclass
    AND u.objid = i.indexrelid
  UNION SELECT x.stxrelid FROM pg_statistic_ext x JOIN uses u ON u.classid = 'pg_statistic_ext'::regclass
    AND u.objid = x.oid
  UNION SELECT r.ev_class FROM tainted t JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass
    AND d.refobjid = t.relid AND d.classid = 'pg_rewrite'::regclass JOIN pg_rewrite r ON r.oid = d.objid
)
SELECT 'function', NULL, proname FROM unsafe
UNION SELECT 'operator', NULL, o.oprname FROM pg_operator o WHERE o.oprcode::oid IN (SELECT oid FROM unsafe)
UNION SELECT 'type', NULL, t.typname FROM types JOIN pg_type t ON t.oid = types.oid
UNION SELECT 'relation', n.nspname, c.relname FROM tainted t JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
"""


@dataclass
class Unsafe:
    """The names (any schema) a statement must not reach to be planned: functions neither built in nor an
    extension's, operators and cast types made of them, and the relations that use them."""

    functions: set[str] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    relations: set[tuple[str, str]] = field(default_factory=set)

    def refusal(self, text: str) -> str | None:
        """Why planning `text` could run a user's function, or None (`text` parses: see `statements`)."""
        for node in walk(parse_one(text)):
            name = _last(_names(node))
            if isinstance(node, ast.FuncCall) and name in self.functions:
                return f"calls {name}(), a user function the planner may run: not planned"
            if isinstance(node, ast.FuncCall) and name in RUN_TIME_READERS:
                return (
                    f"calls {name}(), which the planner may run and which reads what it is given: not planned"
                )
            if isinstance(node, ast.A_Expr) and name in self.operators:
                return f"uses operator {name}, a user function the planner may run: not planned"
            if isinstance(node, ast.TypeName) and name in self.types:
                return f"uses type {name}, made of a user function the planner may run: not planned"
            if (
                isinstance(node, ast.RangeVar)
                and node.relname
                and self._tainted(node.schemaname, node.relname)
            ):
                return f"reads {node.relname}, which uses a user function the planner may run: not planned"
        return None

    def _tainted(self, schema: str | None, name: str) -> bool:
        return any(n == name and schema in (None, s) for s, n in self.relations)


def _names(node: ast.Node) -> tuple[Any, ...]:
    if isinstance(node, ast.FuncCall):
        return node.funcname or ()
    if isinstance(node, ast.A_Expr):
        return node.name or ()
    if isinstance(
        node, ast.TypeName
    ):  # a cast's, a column definition list's: a relation's name is its row type
        return node.names or ()
    return ()


def _last(names: tuple[Any, ...]) -> str | None:
    return names[-1].sval if names and isinstance(names[-1], ast.String) else None


async def read_unsafe(conn: psycopg.AsyncConnection[Any]) -> Unsafe:
    """What the session's database holds that planning must not reach."""
    unsafe = Unsafe()
    cur = await conn.execute(UNSAFE_SQL)
    for kind, schema, name in await cur.fetchall():
        if kind == "relation":
            unsafe.relations.add((schema, name))
        else:
            getattr(unsafe, f"{kind}s").add(name)
    return unsafe
