"""Relation sizes: measured at most once per `size_ttl` however many collectors ask, and never behind a lock.

The tables collector needs the size of every table and of its indexes, the indexes collector the size of each
index; measuring is what costs (a lock and a stat per fork), so the sizes of one pass are kept for
`collectors.defaults.size_ttl` and shared by every collector and refresh meanwhile; a second asker waits for
the first and then measures only what is still missing.

The size functions take an ACCESS SHARE lock on each relation, which queues behind a migration's ACCESS
EXCLUSIVE lock (granted or waiting). A relation so locked is not measured: it keeps its last known size (None
when there is none) and counts as stale until a later refresh reads it. The locks are read from pg_locks in
the same statement; one taken in between makes the batch fail after the 1 s lock_timeout, and it is read once
more, the new lock then seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import psycopg

from exporter.exposition import Exposition, Family

SIZE_BATCH = 1000

STALE_SIZES = Family(
    "pg_exporter_sizes_stale",
    "gauge",
    "Relations whose size could not be read in the last refresh because another session holds or awaits an "
    "ACCESS EXCLUSIVE lock on them (a migration, VACUUM FULL): served with their last known size.",
    ("collector", "datname"),
    "no collector reading sizes (tables, indexes) is enabled",
)


def render_stale(out: Exposition, collector: str, datname: str, stale: int) -> None:
    out.add(STALE_SIZES, out.labels(STALE_SIZES.labels, (collector, datname)), stale)


# ACCESS EXCLUSIVE locks of this database, granted or awaited: an ACCESS SHARE request queues behind either.
_LOCKED = """WITH locked AS MATERIALIZED (
  SELECT DISTINCT relation FROM pg_locks
  WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""
# A table's size is pg_table_size: every fork (main, free space map, visibility map) with its TOAST table and
# TOAST index. An index's is pg_relation_size, its main fork: the other forks are a few pages at most and
# stat-ing them would double the cost of measuring 30,000 indexes. CASE evaluates the size only when unlocked.
_SQL = {
    "table": _LOCKED
    + """
SELECT r::int8 AS oid, l.locked, CASE WHEN NOT l.locked THEN pg_table_size(r) END::int8 AS size
FROM unnest(%s::int8[]::oid[]) AS r LEFT JOIN pg_class c ON c.oid = r,
LATERAL (SELECT EXISTS (SELECT FROM locked WHERE relation IN (r, c.reltoastrelid)) AS locked) l""",
    "index": _LOCKED
    + """
SELECT r::int8 AS oid, l.locked, CASE WHEN NOT l.locked THEN pg_relation_size(r) END::int8 AS size
FROM unnest(%s::int8[]::oid[]) AS r,
LATERAL (SELECT EXISTS (SELECT FROM locked WHERE relation = r) AS locked) l""",
}

RowsFn = Callable[..., Awaitable[list[tuple[Any, ...]]]]
Kind = Literal["table", "index"]


class Sizes(NamedTuple):
    """Bytes on disk by oid (None: dropped meanwhile, or locked and never measured), and how many of the
    relations asked for are stale (locked now, their size from an earlier pass)."""

    bytes: dict[int, int | None]
    stale: int


@dataclass
class _Pass:
    """The sizes of one kind of relation in one database, measured since `started`."""

    started: float = -1.0
    sizes: dict[int, int | None] = field(default_factory=dict)
    previous: dict[int, int | None] = field(default_factory=dict)  # the pass before: for relations locked now
    stale: set[int] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RelationSizes:
    """Sizes of relations by database and oid for one target, kept for `ttl` seconds."""

    def __init__(self, ttl: float = 0.0) -> None:
        self.ttl = ttl
        self._passes: dict[tuple[str, Kind], _Pass] = {}

    def keep_only(self, datnames: Collection[str]) -> None:
        """Forget the databases no longer visited (dropped, or excluded)."""
        for key in [k for k in self._passes if k[0] not in datnames]:
            del self._passes[key]

    async def measure(self, datname: str, rows: RowsFn, oids: Sequence[int], kind: Kind) -> Sizes:
        """The size of each oid of `kind`: measured unless a pass younger than `ttl` has it already.

        Each batch of SIZE_BATCH relations is its own statement: with autocommit its locks are released at
        once, so 10,000 tables never fill the lock table.
        """
        entry = self._passes.setdefault((datname, kind), _Pass())
        async with entry.lock:
            now = time.monotonic()
            if entry.started < 0 or now - entry.started >= self.ttl:
                entry.previous = entry.sizes  # with the stale relations' sizes carried over
                entry.sizes, entry.stale, entry.started = {}, set(), now
            known, stale = entry.sizes, entry.stale
            todo = [oid for oid in oids if oid not in known or oid in stale]
            for start in range(0, len(todo), SIZE_BATCH):
                batch = todo[start : start + SIZE_BATCH]
                for oid, locked, size in await _measure_batch(rows, kind, batch):
                    if locked:
                        stale.add(oid)
                        known[oid] = known.get(oid, entry.previous.get(oid))
                    else:
                        stale.discard(oid)
                        known[oid] = size
        return Sizes({oid: known.get(oid) for oid in oids}, sum(1 for oid in oids if oid in stale))


async def _measure_batch(rows: RowsFn, kind: Kind, batch: list[int]) -> list[tuple[int, bool, int | None]]:
    """(oid, locked, size) of each relation of the batch; all of them locked when a lock taken after the
    pg_locks read keeps the batch waiting twice."""
    for _attempt in range(2):
        try:
            # The oids travel as int8[]: left to infer, the parameter costs twice as much to convert.
            return [(int(r[0]), bool(r[1]), r[2]) for r in await rows(_SQL[kind], (batch,))]
        except psycopg.errors.LockNotAvailable:
            continue
    return [(oid, True, None) for oid in batch]
