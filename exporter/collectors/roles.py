"""pg_roles: each role's connection limit."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions

CONNECTION_LIMIT = gauge(
    "pg_roles_connection_limit", "Connection limit set for the role (-1: no limit).", ("rolname",)
)


class Role(NamedTuple):
    rolname: str
    connection_limit: int


class RolesCollector(RowsCollector[Role, CollectorOptions]):
    name = "roles"
    source = "pg_roles"
    families = (CONNECTION_LIMIT,)
    row = Role
    sql = "SELECT rolname, rolconnlimit::int8 AS connection_limit FROM pg_roles ORDER BY rolname"
