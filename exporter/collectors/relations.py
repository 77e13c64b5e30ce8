"""The relations the per-table and per-index collectors read, largest first and capped. The tables are ranked
and capped in a first step that reads the catalogs only: the statistics functions and the joins then run
for the rows kept alone, in that order, and no wide row is counted or sorted.

A collector pair reading the same relations (tables and statio_tables, indexes and statio_indexes) reads them
in one statement when both are refreshed: the first leaves the second's columns in `session.shared`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    cap_clause,
    fetch_table,
    render_capped,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

KeysT = TypeVar("KeysT", bound=tuple[Any, ...])

# pg_stat_user_tables' and pg_stat_user_indexes' schemas: outside the system ones
USER_SCHEMA = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'"
# relations with storage (tables, materialized views): pg_statio_user_tables' rows, and the indexed ones
STORED = "c.relkind IN ('r', 'm')"


def user_tables_sql(select: str, joins: str, limit: int, relkinds: str = "'r', 'm', 'p'") -> str:
    """`select` over the user tables of `relkinds`, largest first, at most `limit` (0: all): `c` has each
    table's oid, relname, relkind, reltoastrelid and nspname, `total` (tables before the cap) and
    `stored_total` (those with storage); `x` its indexes (`idx`, an array of oids) and their summed scans,
    fetches, block reads and hits; then `joins`, which may read `user_tables` too. (`x` is aggregated once and
    hash-joined: a lateral subquery per table costs a scan of pg_index per table where pg_index is small.)"""
    return f"""WITH user_tables AS MATERIALIZED (
  SELECT c.oid, c.relname, c.relkind, c.reltoastrelid, n.nspname, count(*) OVER () AS total,
         count(*) FILTER (WHERE {STORED}) OVER () AS stored_total
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ({relkinds}) AND {USER_SCHEMA}
  ORDER BY c.relpages DESC, c.oid {cap_clause(limit)}
)
SELECT {select}
FROM user_tables c
LEFT JOIN (
  SELECT i.indrelid, array_agg(i.indexrelid::int8) AS idx, sum(pg_stat_get_numscans(i.indexrelid))::int8 AS idx_scan,
         sum(pg_stat_get_tuples_fetched(i.indexrelid))::int8 AS idx_fetch,
         sum(pg_stat_get_blocks_fetched(i.indexrelid) - pg_stat_get_blocks_hit(i.indexrelid))::int8 AS read,
         sum(pg_stat_get_blocks_hit(i.indexrelid))::int8 AS hit
  FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM user_tables) GROUP BY i.indrelid
) x ON x.indrelid = c.oid
{joins}"""


def user_indexes_sql(select: str, limit: int) -> str:
    """`INDEX_KEYS` and `select` over the indexes of the user tables (pg_stat_user_indexes' rows), largest
    first, at most `limit` (0: all): pg_index `i`, the index `c`, its table `t` and the namespace `n`. (Ranked
    first, as the tables are, they cost more: an index's row is narrow and its statistics are few.)"""
    return f"""SELECT {INDEX_KEYS}, {select}
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE t.relkind IN ('r', 'm') AND {USER_SCHEMA}
ORDER BY c.relpages DESC, i.indexrelid {cap_clause(limit)}"""


async def fetch_with(
    session: Session,
    keys: type[KeysT],
    columns: Sequence[Column],
    partner: str,
    partner_columns: Sequence[Column],
    sql: Callable[[str], str],
) -> ColumnTable[KeysT]:
    """`columns`, and `partner`'s columns after them when that collector is refreshed in this visit too: the
    statement `sql(select_list)` is run once, and the partner's part is left in `session.shared` with the
    same keys. Returns this collector's own part."""
    if partner not in session.refreshing:
        return await fetch_table(session, keys, columns, sql(select_list(columns)))
    both = [*columns, *partner_columns]
    read = await fetch_table(session, keys, both, sql(select_list(both)))
    own = len(columns)
    session.shared[partner] = ColumnTable(read.keys, partner_columns, read.values[own:], read.count)
    return ColumnTable(read.keys, columns, read.values[:own], read.count)


class IndexKeys(NamedTuple):
    """The leading columns of a user_indexes_sql statement: INDEX_KEYS."""

    oid: Sequence[int]
    total: Sequence[int]  # indexes in the database before the cap, in every row
    schemaname: Sequence[str]
    relname: Sequence[str]
    indexrelname: Sequence[str]


INDEX_KEYS = (
    "i.indexrelid::int8 AS oid, count(*) OVER ()::int8 AS total, n.nspname AS schemaname, t.relname, "
    "c.relname AS indexrelname"
)


class PartnerCollector(Collector[ColumnTable[KeysT], CollectorOptions]):
    """The second collector of a pair: serves what the first read for it in this visit, else reads its
    `columns` on its own (`statement`). Its `keys` carry `total` and, after `datname`, the `labels` by name;
    its families are its columns', with those labels."""

    per_database = True
    default_ttl = 60.0
    labels: ClassVar[tuple[str, ...]]
    keys: ClassVar[type[tuple[Any, ...]]]  # a NamedTuple of sequences, as `fetch_table` takes it
    columns: ClassVar[tuple[Column, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "columns" in vars(cls):
            cls.families = with_labels(cls.labels, *(c.family for c in cls.columns))

    async def fetch(self, session: Session) -> ColumnTable[KeysT]:
        shared = session.shared.pop(self.name, None)
        if shared is not None:
            assert isinstance(shared, ColumnTable)
            return shared
        return await self.read(session)

    async def read(self, session: Session) -> ColumnTable[KeysT]:
        """The collector's rows when its partner did not read them."""
        table: ColumnTable[Any] = await fetch_table(
            session, self.keys, self.columns, self.statement(select_list(self.columns))
        )
        return table

    @abc.abstractmethod
    def statement(self, select: str) -> str:
        """The statement of the keys and then `select` (the columns' list)."""

    def render(self, out: Exposition, results: Sequence[tuple[str, ColumnTable[KeysT]]]) -> None:
        for datname, table in results:
            keys = table.keys
            values = ([datname] * table.count, *(getattr(keys, name) for name in self.labels[1:]))
            render_capped(out, self.name, datname, out.label_columns(self.labels, values), table)
