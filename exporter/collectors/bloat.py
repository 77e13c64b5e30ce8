"""Table bloat, estimated from pg_stats and pg_class without any extension (the ioguide-style estimate).

The estimate needs fresh statistics (ANALYZE) and covers the tables the role may SELECT: pg_stats shows a
column only to roles with SELECT on it (grant pg_read_all_data, or SELECT per table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, cap_clause, gauge, render_cut
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

LABELS = ("datname", "schemaname", "relname")
BYTES = gauge(
    "pg_table_bloat_bytes",
    "Estimated space of the table beyond what its live rows need at its fillfactor, in bytes.",
    LABELS,
)
RATIO = gauge("pg_table_bloat_ratio", "Estimated bloat as a fraction of the table's size (0 to 1).", LABELS)


class Bloat(NamedTuple):
    schemaname: str
    relname: str
    bloat_bytes: int
    bloat_ratio: float
    total: int  # tables estimated, before the cap


# Expected pages = rows / (rows per page at the fillfactor), from the average row width in pg_stats plus the
# tuple header and alignment (as the widely used ioguide estimate computes it); bloat = actual - expected.
# Tables lacking statistics for some column (never analyzed, or not readable by this role) get no estimate.
# pg_stats is read table by table, for the tables this role may SELECT alone: the view checks the privilege of
# every column of every table, which for a role that may read none (pg_monitor alone) costs 0.3 s at 10,000
# tables and returns nothing.
_SQL = """
WITH tbl AS (
  SELECT c.oid AS relid, n.nspname AS schemaname, c.relname, current_setting('block_size')::int AS bs,
         c.relpages + coalesce(t.relpages, 0) AS pages, c.reltuples, coalesce(t.reltuples, 0) AS toasttuples,
         coalesce(substring(array_to_string(c.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 100) AS ff,
         -- line pointer + header (with null bitmap) + data, header and data each aligned to 8 bytes
         4 + ceil((23 + CASE WHEN st.maxnull > 0 THEN (7 + st.ncols) / 8 ELSE 0 END) / 8.0) * 8
           + ceil(st.datawidth / 8.0) * 8 AS tuplesize
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  CROSS JOIN LATERAL (
    SELECT count(*) AS ncols, max(s.null_frac) AS maxnull, sum((1 - s.null_frac) * s.avg_width) AS datawidth
    FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited
  ) st
  WHERE c.relkind IN ('r', 'm') AND c.reltuples >= 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND has_table_privilege(c.oid, 'SELECT')
    AND st.ncols = (SELECT count(*) FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
), est AS (
  SELECT relid, schemaname, relname, bs, pages,
         ceil(reltuples / ((bs - 24) * ff / 100.0 / tuplesize)) + ceil(toasttuples / 4) AS expected
  FROM tbl
)
SELECT schemaname, relname, (greatest(pages - expected, 0) * bs)::int8 AS bloat_bytes,
       (CASE WHEN pages > 0 THEN greatest(pages - expected, 0) / pages ELSE 0 END)::float8 AS bloat_ratio,
       count(*) OVER ()::int8 AS total
FROM est
ORDER BY pages DESC, relid
"""


class BloatCollector(Collector[list[Bloat], CollectorOptions]):
    name = "bloat"
    order = 150
    per_database = True
    default_ttl = 600.0
    source = "pg_stats, pg_class"
    families = (BYTES, RATIO)

    async def fetch(self, session: Session) -> list[Bloat]:
        return await session.typed(Bloat, _SQL + cap_clause(self.limits.tables_per_database))

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Bloat]]]) -> None:
        for datname, rows in results:
            labels = out.label_rows(LABELS, ((datname, r.schemaname, r.relname) for r in rows))
            out.add_column(BYTES, labels, (r.bloat_bytes for r in rows))
            out.add_column(RATIO, labels, (r.bloat_ratio for r in rows))
            render_cut(out, self.name, datname, rows[0].total if rows else 0, len(rows))
