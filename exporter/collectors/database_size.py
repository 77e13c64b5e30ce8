"""pg_database_size_bytes: walks each database's directory, so it has a TTL of its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.db import Session
from exporter.exposition import Exposition

SIZE = gauge("pg_database_size_bytes", "Disk space used by the database, in bytes.")


class DatabaseSizeCollector(Collector):
    name = "database_size"
    default_ttl = 60.0
    source = "pg_database_size()"
    families = with_labels(("datname",), SIZE)

    async def fetch(self, session: Session) -> Any:
        return await session.rows(
            "SELECT datname, pg_database_size(oid)::int8 FROM pg_database "
            "WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') ORDER BY datname"
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, rows in results:
            for datname, size in rows:
                out.add(SIZE, out.labels(("datname",), (datname,)), size)
