"""pg_database_size_bytes: walks each database's directory, so it has a TTL of its own (5 minutes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

SIZE = gauge("pg_database_size_bytes", "Disk space used by the database, in bytes.", ("datname",))


class DatabaseSize(NamedTuple):
    datname: str
    size: int


class DatabaseSizeCollector(Collector[list[DatabaseSize], CollectorOptions]):
    name = "database_size"
    order = 50
    default_ttl = 300.0  # as relation sizes' size_ttl: a database's size moves slowly, its walk costs
    source = "pg_database_size() (walks each database's files)"
    families = (SIZE,)

    async def fetch(self, session: Session) -> list[DatabaseSize]:
        return await session.typed(
            DatabaseSize,
            "SELECT datname, pg_database_size(oid)::int8 AS size FROM pg_database "
            "WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') ORDER BY datname",
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, list[DatabaseSize]]]) -> None:
        for _, rows in results:
            for row in rows:
                out.add(SIZE, out.labels(SIZE.labels, (row.datname,)), row.size)
