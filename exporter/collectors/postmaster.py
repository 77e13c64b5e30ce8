"""Server identity: pg_static (version) and pg_postmaster_start_time_seconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

STATIC = gauge("pg_static", "Version string as reported by postgres; always 1.", ("version", "short_version"))
START_TIME = gauge("pg_postmaster_start_time_seconds", "Time at which postmaster started (Unix time).")


def short_version(version_num: int) -> str:
    """`150004` → `15.4.0`, `90624` → `9.6.24`, as postgres_exporter writes short_version."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}.0"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


class Postmaster(NamedTuple):
    version: str
    start_time: float


class Identity(NamedTuple):
    postmaster: Postmaster
    version_num: int  # the server's, as the connection reported it


class PostmasterCollector(Collector[Identity, CollectorOptions]):
    name = "postmaster"
    order = 10
    source = "version(), pg_postmaster_start_time()"
    families = (STATIC, START_TIME)

    async def fetch(self, session: Session) -> Identity:
        rows = await session.typed(
            Postmaster,
            "SELECT version() AS version, extract(epoch FROM pg_postmaster_start_time())::float8 AS start_time",
        )
        return Identity(rows[0], session.server.version_num)

    def render(self, out: Exposition, results: Sequence[tuple[str, Identity]]) -> None:
        for _, (postmaster, version_num) in results:
            versions = (postmaster.version, short_version(version_num))
            out.add(STATIC, out.labels(STATIC.labels, versions), 1)
            out.add(START_TIME, out.labels((), ()), postmaster.start_time)
