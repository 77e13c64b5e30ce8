"""pg_stat_progress_vacuum in every database: the vacuums running now, their phase and progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, add_samples, gauge, take_shared
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_stat_progress_vacuum_"
LABELS = ("datname", "relname")
RUNNING = "no vacuum is running"
# pg_stat_progress_vacuum's phases, in order; postgres_exporter exports every one, 1 for the current phase
PHASES = (
    "initializing", "scanning heap", "vacuuming indexes", "vacuuming heap", "cleaning up indexes",
    "truncating heap", "performing final cleanup",
)  # fmt: skip

PHASE = gauge(P + "phase", "1 for the vacuum's current phase, 0 for the others.", (*LABELS, "phase"), RUNNING)
HEAP_BLKS = gauge(P + "heap_blks", "Heap blocks of the table being vacuumed.", LABELS, RUNNING)
SCANNED = gauge(P + "heap_blks_scanned", "Heap blocks scanned so far.", LABELS, RUNNING)
VACUUMED = gauge(P + "heap_blks_vacuumed", "Heap blocks vacuumed so far.", LABELS, RUNNING)
INDEX_VACUUMS = gauge(P + "index_vacuums", "Index vacuum cycles completed.", LABELS, RUNNING)
MAX_DEAD = gauge(
    P + "max_dead_tuples",
    "Dead tuples that fit in memory before an index vacuum cycle (PostgreSQL 17+: bytes, max_dead_tuple_bytes).",
    LABELS,
    RUNNING,
)
NUM_DEAD = gauge(
    P + "num_dead_tuples",
    "Dead tuples collected since the last index vacuum cycle (PostgreSQL 17+: bytes, dead_tuple_bytes).",
    LABELS,
    RUNNING,
)

VALUES = (HEAP_BLKS, SCANNED, VACUUMED, INDEX_VACUUMS, MAX_DEAD, NUM_DEAD)  # Vacuum's fields after the phase


class Vacuum(NamedTuple):
    relname: str
    phase: str
    heap_blks: int
    heap_blks_scanned: int
    heap_blks_vacuumed: int
    index_vacuums: int
    max_dead_tuples: int
    num_dead_tuples: int


def progress_sql(version_num: int) -> str:
    """PostgreSQL 17 replaced the dead tuple counts by the bytes of memory they take."""
    max_dead, num_dead = (
        ("max_dead_tuple_bytes", "dead_tuple_bytes")
        if version_num >= 170000
        else ("max_dead_tuples", "num_dead_tuples")
    )
    # This database's vacuums only: relid names a relation of the database the session is in.
    return f"""
SELECT p.relid::regclass::text AS relname, p.phase, p.heap_blks_total::int8 AS heap_blks,
       p.heap_blks_scanned::int8 AS heap_blks_scanned, p.heap_blks_vacuumed::int8 AS heap_blks_vacuumed,
       p.index_vacuum_count::int8 AS index_vacuums, p.{max_dead}::int8 AS max_dead_tuples,
       p.{num_dead}::int8 AS num_dead_tuples
FROM pg_stat_progress_vacuum p
WHERE p.datname = current_database()
ORDER BY p.pid
"""


class ProgressVacuumCollector(Collector[list[Vacuum], CollectorOptions]):
    name = "progress_vacuum"
    per_database = True
    # Read with the other per-database collectors, once a minute: at TTL 0 every scrape would visit every
    # database of the server (200 databases: 200 connections a scrape), and a vacuum worth watching runs longer.
    default_ttl = 60.0
    source = "pg_stat_progress_vacuum"
    families = (PHASE, *VALUES)
    probe = "EXISTS (SELECT FROM pg_stat_progress_vacuum WHERE datname = current_database())"

    async def fetch(self, session: Session) -> list[Vacuum]:
        none_running: list[Vacuum] | None = take_shared(session, self.name, list)
        if none_running is not None:
            return none_running
        return await session.typed(Vacuum, progress_sql(session.server.version_num))

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Vacuum]]]) -> None:
        for datname, vacuums in results:
            for v in vacuums:
                for phase in PHASES:
                    out.add(
                        PHASE, out.labels(PHASE.labels, (datname, v.relname, phase)), int(phase == v.phase)
                    )
                lbl = out.labels(LABELS, (datname, v.relname))
                add_samples(out, lbl, VALUES, v[2:])
