"""pg_stat_archiver: WAL archiving, which point-in-time recovery depends on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, counter, gauge
from exporter.db import Session
from exporter.exposition import Exposition

ARCHIVED = counter("pg_stat_archiver_archived_count", "WAL files successfully archived.")
FAILED = counter("pg_stat_archiver_failed_count", "Failed attempts to archive WAL files.")
AGE = gauge(
    "pg_stat_archiver_last_archive_age",
    "Seconds since the last WAL file was archived; absent when none ever was.",
)

_SQL = """
SELECT archived_count::int8, failed_count::int8,
       extract(epoch FROM now() - last_archived_time)::float8
FROM pg_stat_archiver
"""


class ArchiverCollector(Collector):
    name = "archiver"
    source = "pg_stat_archiver"
    families = (ARCHIVED, FAILED, AGE)

    async def fetch(self, session: Session) -> Any:
        return await session.rows(_SQL)

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        plain = out.labels((), ())
        for _, rows in results:
            for archived, failed, age in rows:
                out.add(ARCHIVED, plain, archived)
                out.add(FAILED, plain, failed)
                out.add(AGE, plain, age)
