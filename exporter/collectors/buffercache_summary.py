"""pg_buffercache_summary() (the pg_buffercache extension, PostgreSQL 16+): how the shared buffers are used.

postgres_exporter's `buffercache_summary` collector, off by default as there. Without the extension in the
DSN's database, or before PostgreSQL 16, there is no sample and no failure.
"""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import OffByDefault
from exporter.db import Session

P = "pg_buffercache_summary_"
ABSENT = "the pg_buffercache extension is not installed in the DSN's database, or PostgreSQL is older than 16"
# postgres_exporter's names and help texts (its collector/pg_buffercache_summary.go), in Summary's field order
FAMILIES = (
    gauge(P + "buffers_used", "Number of used shared buffers", absent_when=ABSENT),
    gauge(P + "buffers_unused", "Number of unused shared buffers", absent_when=ABSENT),
    gauge(P + "buffers_dirty", "Number of dirty shared buffers", absent_when=ABSENT),
    gauge(P + "buffers_pinned", "Number of pinned shared buffers", absent_when=ABSENT),
    gauge(P + "usagecount_avg", "Average usage count of used shared buffers", absent_when=ABSENT),
)
PG16 = 160000


class Summary(NamedTuple):
    buffers_used: int
    buffers_unused: int
    buffers_dirty: int
    buffers_pinned: int
    usagecount_avg: float


# The extension's schema is wherever it was created: found through pg_extension, the function called there.
_SCHEMA_SQL = """
SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_buffercache'
"""
_SQL = """
SELECT coalesce(buffers_used, 0)::int8 AS buffers_used, coalesce(buffers_unused, 0)::int8 AS buffers_unused,
       coalesce(buffers_dirty, 0)::int8 AS buffers_dirty, coalesce(buffers_pinned, 0)::int8 AS buffers_pinned,
       coalesce(usagecount_avg, 0)::float8 AS usagecount_avg
FROM {schema}.pg_buffercache_summary()
"""


class BuffercacheSummaryCollector(RowsCollector[Summary, OffByDefault]):
    name = "buffercache_summary"
    source = "pg_buffercache_summary() (extension pg_buffercache, PostgreSQL 16+)"
    options_model = OffByDefault
    families = FAMILIES
    row = Summary
    sql = _SQL  # a template: the extension's schema is filled in

    async def fetch(self, session: Session) -> list[Summary]:
        if session.server.version_num < PG16:
            return []
        found = await session.rows(_SCHEMA_SQL, binary=False)
        if not found:
            return []
        return await session.typed(Summary, self.sql.format(schema=found[0][0]))
