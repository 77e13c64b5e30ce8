"""pg_roles: each role's connection limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

CONNECTION_LIMIT = gauge(
    "pg_roles_connection_limit", "Connection limit set for the role (-1: no limit).", ("rolname",)
)


class Role(NamedTuple):
    rolname: str
    connection_limit: int


class RolesCollector(Collector[list[Role], CollectorOptions]):
    name = "roles"
    source = "pg_roles"
    families = (CONNECTION_LIMIT,)

    async def fetch(self, session: Session) -> list[Role]:
        return await session.typed(
            Role, "SELECT rolname, rolconnlimit::int8 AS connection_limit FROM pg_roles ORDER BY rolname"
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Role]]]) -> None:
        for _, roles in results:
            for role in roles:
                out.add(
                    CONNECTION_LIMIT,
                    out.labels(CONNECTION_LIMIT.labels, (role.rolname,)),
                    role.connection_limit,
                )
