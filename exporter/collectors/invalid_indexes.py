"""pg_index in every database: indexes left invalid, as a failed CREATE INDEX CONCURRENTLY leaves them."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowGaugeCollector, gauge

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


class InvalidIndexesCollector(RowGaugeCollector):
    name = "invalid_indexes"
    source = "pg_index"
    family = INVALID
    row = InvalidIndex
    sql = _SQL
    probe = "EXISTS (SELECT FROM pg_index WHERE NOT indisvalid)"
