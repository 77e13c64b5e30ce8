"""pg_database_size_bytes: walks each database's directory, so it has a TTL of its own (5 minutes)."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions

SIZE = gauge("pg_database_size_bytes", "Disk space used by the database, in bytes.", ("datname",))


class DatabaseSize(NamedTuple):
    datname: str
    size: int


class DatabaseSizeCollector(RowsCollector[DatabaseSize, CollectorOptions]):
    name = "database_size"
    order = 50
    default_ttl = 300.0  # as relation sizes' size_ttl: a database's size moves slowly, its walk costs
    source = "pg_database_size() (walks each database's files)"
    families = (SIZE,)
    row = DatabaseSize
    sql = (
        "SELECT datname, pg_database_size(oid)::int8 AS size FROM pg_database "
        "WHERE datallowconn AND has_database_privilege(oid, 'CONNECT') ORDER BY datname"
    )
