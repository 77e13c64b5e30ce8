"""pg_stat_archiver: WAL archiving, which point-in-time recovery depends on."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, counter, gauge
from exporter.collectors.options import CollectorOptions

ARCHIVED = counter("pg_stat_archiver_archived_count", "WAL files successfully archived.")
FAILED = counter("pg_stat_archiver_failed_count", "Failed attempts to archive WAL files.")
AGE = gauge(
    "pg_stat_archiver_last_archive_age",
    "Seconds since the last WAL file was archived; absent when none ever was.",
    absent_when="no WAL file was ever archived",
)


class Archiver(NamedTuple):
    archived_count: int
    failed_count: int
    last_archive_age: float | None


_SQL = """
SELECT archived_count::int8 AS archived_count, failed_count::int8 AS failed_count,
       extract(epoch FROM now() - last_archived_time)::float8 AS last_archive_age
FROM pg_stat_archiver
"""


class ArchiverCollector(RowsCollector[Archiver, CollectorOptions]):
    name = "archiver"
    order = 90
    source = "pg_stat_archiver"
    families = (ARCHIVED, FAILED, AGE)  # in the order of Archiver's fields
    row = Archiver
    sql = _SQL
