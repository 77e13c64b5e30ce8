"""Table bloat, estimated from pg_stats and pg_class without any extension (the ioguide-style estimate).

The estimate needs fresh statistics (ANALYZE) and covers the tables whose pg_stats rows the role may read:
pg_stats shows a column only to roles with SELECT on it (grant pg_read_all_data, or SELECT per table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, cap_clause, gauge, render_cut
from exporter.db import Session
from exporter.exposition import Exposition

LABELS = ("datname", "schemaname", "relname")
BYTES = gauge(
    "pg_table_bloat_bytes",
    "Estimated space of the table beyond what its live rows need at its fillfactor, in bytes.",
)
RATIO = gauge("pg_table_bloat_ratio", "Estimated bloat as a fraction of the table's size (0 to 1).")

# Expected pages = rows / (rows per page at the fillfactor), from the average row width in pg_stats plus the
# tuple header and alignment; bloat = actual pages - expected pages. Tables whose columns lack statistics
# (never analyzed, or not readable by this role) or which hold `name` columns are left out: no estimate.
_SQL = """
WITH cols AS (
  SELECT tbl.oid AS relid, ns.nspname AS schemaname, tbl.relname, tbl.reltuples, tbl.relpages AS heappages,
         coalesce(toast.relpages, 0) AS toastpages, coalesce(toast.reltuples, 0) AS toasttuples,
         coalesce(substring(array_to_string(tbl.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 100) AS ff,
         current_setting('block_size')::int AS bs,
         23 + CASE WHEN max(coalesce(s.null_frac, 0)) > 0 THEN (7 + count(*)) / 8 ELSE 0 END AS hdr,
         sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS datawidth,
         count(s.attname) = count(*) AND NOT bool_or(att.atttypid = 'pg_catalog.name'::regtype) AS estimable
  FROM pg_attribute att
  JOIN pg_class tbl ON tbl.oid = att.attrelid
  JOIN pg_namespace ns ON ns.oid = tbl.relnamespace
  LEFT JOIN pg_stats s ON s.schemaname = ns.nspname AND s.tablename = tbl.relname
                      AND s.attname = att.attname AND NOT s.inherited
  LEFT JOIN pg_class toast ON toast.oid = tbl.reltoastrelid
  WHERE att.attnum > 0 AND NOT att.attisdropped AND tbl.relkind IN ('r', 'm')
    AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname !~ '^pg_toast'
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
), sized AS (
  SELECT relid, schemaname, relname, bs, heappages + toastpages AS pages,
         -- tuple size: line pointer (4) + header and data, each aligned to 8 bytes (MAXALIGN)
         4 + ceil(hdr / 8.0) * 8 + ceil(datawidth / 8.0) * 8 AS tuplesize,
         reltuples, toasttuples, ff
  FROM cols
  WHERE estimable AND reltuples >= 0
), estimated AS (
  SELECT relid, schemaname, relname, bs, pages,
         ceil(reltuples / ((bs - 24) * ff / 100.0 / tuplesize)) + ceil(toasttuples / 4) AS expected
  FROM sized
)
SELECT schemaname, relname, (greatest(pages - expected, 0) * bs)::int8,
       CASE WHEN pages > 0 THEN greatest(pages - expected, 0)::float8 / pages ELSE 0 END::float8,
       count(*) OVER ()::int8
FROM estimated
ORDER BY pages DESC, relid
"""


class BloatCollector(Collector):
    name = "bloat"
    per_database = True
    default_ttl = 600.0
    families = (BYTES, RATIO)

    async def fetch(self, session: Session) -> Any:
        rows = await session.rows(_SQL + cap_clause(self.limits.tables_per_database))
        return rows, rows[0][4] if rows else 0

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for datname, (rows, total) in results:
            labels = [out.labels(LABELS, (datname, r[0], r[1])) for r in rows]
            out.add_column(BYTES, labels, (r[2] for r in rows))
            out.add_column(RATIO, labels, (r[3] for r in rows))
            render_cut(out, self.name, datname, total, len(rows))
