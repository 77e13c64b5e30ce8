"""pg_index in every database: indexes left invalid, as a failed CREATE INDEX CONCURRENTLY leaves them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

INVALID = gauge(
    "pg_index_invalid",
    "1 for an index not valid for queries (pg_index.indisvalid false): drop it, or REINDEX it; "
    "valid indexes have no sample.",
    ("datname", "schemaname", "relname", "indexrelname"),
    "no index is invalid",
)


class InvalidIndex(NamedTuple):
    schemaname: str
    relname: str
    indexrelname: str


_SQL = """
SELECT n.nspname AS schemaname, t.relname, c.relname AS indexrelname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT i.indisvalid
ORDER BY 1, 2, 3
"""


class InvalidIndexesCollector(Collector[list[InvalidIndex], CollectorOptions]):
    name = "invalid_indexes"
    per_database = True
    default_ttl = 60.0
    source = "pg_index"
    families = (INVALID,)

    async def fetch(self, session: Session) -> list[InvalidIndex]:
        return await session.typed(InvalidIndex, _SQL)

    def render(self, out: Exposition, results: Sequence[tuple[str, list[InvalidIndex]]]) -> None:
        for datname, rows in results:
            for row in rows:
                out.add(
                    INVALID,
                    out.labels(INVALID.labels, (datname, row.schemaname, row.relname, row.indexrelname)),
                    1,
                )
