"""Server identity: pg_static (version) and pg_postmaster_start_time_seconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.db import Session
from exporter.exposition import Exposition

STATIC = gauge("pg_static", "Version string as reported by postgres; always 1.")
START_TIME = gauge("pg_postmaster_start_time_seconds", "Time at which postmaster started (Unix time).")


def short_version(version_num: int) -> str:
    """`150004` → `15.4.0`, `90624` → `9.6.24`, as postgres_exporter writes short_version."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}.0"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


class PostmasterCollector(Collector):
    name = "postmaster"
    source = "version(), pg_postmaster_start_time()"
    families = (*with_labels(("version", "short_version"), STATIC), START_TIME)

    async def fetch(self, session: Session) -> Any:
        rows = await session.rows("SELECT version(), extract(epoch FROM pg_postmaster_start_time())::float8")
        return rows[0], session.server.version_num

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, ((version, started), version_num) in results:
            out.add(
                STATIC, out.labels(("version", "short_version"), (version, short_version(version_num))), 1
            )
            out.add(START_TIME, out.labels((), ()), started)
