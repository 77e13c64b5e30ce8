"""pg_ls_waldir(): the WAL segments in pg_wal and their total size."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions

SEGMENTS = gauge("pg_wal_segments", "WAL segment files in pg_wal.")
SIZE = gauge("pg_wal_size_bytes", "Total size of the WAL segment files in pg_wal, in bytes.")


class Wal(NamedTuple):
    segments: int
    size: int


# Segment files only (24 hex digits), as postgres_exporter counts them: no .history, .partial or archive_status.
_SQL = """
SELECT count(*)::int8 AS segments, coalesce(sum(size), 0)::int8 AS size
FROM pg_ls_waldir()
WHERE name ~ '^[0-9A-F]{24}$'
"""


class WalCollector(RowsCollector[Wal, CollectorOptions]):
    name = "wal"
    source = "pg_ls_waldir()"
    families = (SEGMENTS, SIZE)  # in the order of Wal's fields
    row = Wal
    sql = _SQL
