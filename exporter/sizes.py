"""Relation sizes: measured at most once per `size_ttl` however many collectors ask, and never behind a lock.

The tables collector needs the size of every table and of its indexes, the indexes collector the size of each
index; measuring is what costs (a lock and a stat per fork), so the sizes of one pass are kept for
`collectors.defaults.size_ttl` and shared by every collector and refresh meanwhile; a second asker waits for
the first and then measures only what is still missing.

The size functions take an ACCESS SHARE lock on each relation, which queues behind a migration's ACCESS
EXCLUSIVE lock (granted or waiting). A relation so locked is not measured: it keeps its last known size (None
when there is none) and counts as stale until a later refresh reads it. pg_locks is read for every database at
once (reading it scans the whole shared lock table, which costs as much as measuring a small database), and
one reading serves every database's measurement of the same refresh for at most LOCKS_FRESH seconds; a lock
taken since makes a batch fail after the 1 s lock_timeout, and it is measured once more after a fresh reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
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


LOCKS_FRESH = 1.0  # seconds a reading of pg_locks serves: no longer than lock_timeout would make one wait
# ACCESS EXCLUSIVE locks on relations, granted or awaited (an ACCESS SHARE request queues behind either), of
# every database: one reading serves the measurements of all of them.
_LOCKS_SQL = """SELECT d.datname, array_agg(DISTINCT l.relation::int8) AS relations
FROM pg_locks l JOIN pg_database d ON d.oid = l.database
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
GROUP BY d.datname"""
_LOCKED = """WITH locked AS MATERIALIZED (SELECT unnest(%s::int8[]::oid[]) AS relation)"""
# A table's size is pg_table_size: every fork (main, free space map, visibility map) with its TOAST table and
# TOAST index. An index's is pg_relation_size, its main fork: the other forks are a few pages at most and
# stat-ing them would double the cost of measuring 30,000 indexes. CASE evaluates the size only when unlocked.
_TABLE = """
SELECT r::int8 AS oid, l.locked, CASE WHEN NOT l.locked THEN pg_table_size(r) END::int8 AS size
FROM unnest(%s::int8[]::oid[]) AS r LEFT JOIN pg_class c ON c.oid = r,
LATERAL (SELECT EXISTS (SELECT FROM locked WHERE relation IN (r, c.reltoastrelid)) AS locked) l"""
_INDEX = """
SELECT r::int8 AS oid, l.locked, CASE WHEN NOT l.locked THEN pg_relation_size(r) END::int8 AS size
FROM unnest(%s::int8[]::oid[]) AS r,
LATERAL (SELECT EXISTS (SELECT FROM locked WHERE relation = r) AS locked) l"""
# Tables and indexes together: one statement for both (an oid names one relation).
_SQL = {
    ("table",): _LOCKED + _TABLE,
    ("index",): _LOCKED + _INDEX,
    ("table", "index"): _LOCKED + _TABLE + "\nUNION ALL" + _INDEX,
}
# The same when the database has no relation locked ACCESS EXCLUSIVE (nearly always): no lock to check, which
# on a small database is a third of the statement's cost.
_FREE_TABLE = """
SELECT r::int8 AS oid, false AS locked, pg_table_size(r)::int8 AS size FROM unnest(%s::int8[]::oid[]) AS r"""
_FREE_INDEX = """
SELECT r::int8 AS oid, false AS locked, pg_relation_size(r)::int8 AS size FROM unnest(%s::int8[]::oid[]) AS r"""
_NONE_LOCKED = {
    ("table",): _FREE_TABLE,
    ("index",): _FREE_INDEX,
    ("table", "index"): _FREE_TABLE + "\nUNION ALL" + _FREE_INDEX,
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

    def __init__(self, ttl: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._passes: dict[tuple[str, Kind], _Pass] = {}
        self._locks: tuple[float, dict[str, list[int]]] = (-1.0, {})
        self._locks_read = asyncio.Lock()

    def new_refresh(self) -> None:
        """A refresh of the databases begins: its first measurement reads pg_locks anew."""
        self._locks = (-1.0, {})

    async def locked(self, datname: str, rows: RowsFn, fresh: bool = False) -> list[int]:
        """The relations of `datname` locked ACCESS EXCLUSIVE: from this refresh's reading of pg_locks if it is
        younger than LOCKS_FRESH, else from a new one (also when `fresh`), which the other databases share."""
        async with self._locks_read:
            read_at, by_database = self._locks
            if fresh or read_at < 0 or self.clock() - read_at >= LOCKS_FRESH:
                read_at = self.clock()
                by_database = {str(r[0]): [int(x) for x in r[1]] for r in await rows(_LOCKS_SQL)}
                self._locks = (read_at, by_database)
            return by_database.get(datname, [])

    def keep_only(self, datnames: Collection[str]) -> None:
        """Forget the databases no longer visited (dropped, or excluded)."""
        for key in [k for k in self._passes if k[0] not in datnames]:
            del self._passes[key]

    async def measure(self, datname: str, rows: RowsFn, oids: Sequence[int], kind: Kind) -> Sizes:
        """The size of each oid of `kind`: measured unless a pass younger than `ttl` has it already."""
        return (await self.measure_kinds(datname, rows, {kind: oids}))[kind]

    async def measure_kinds(
        self, datname: str, rows: RowsFn, wanted: Mapping[Kind, Sequence[int]]
    ) -> dict[Kind, Sizes]:
        """The sizes of the tables and indexes of `wanted`, those of both kinds measured in the same statements.

        Each batch of SIZE_BATCH relations is its own statement: with autocommit its locks are released at
        once, so 10,000 tables never fill the lock table.
        """
        kinds = sorted(wanted)  # "index" before "table": two measurers never wait on each other's lock
        entries = {kind: self._passes.setdefault((datname, kind), _Pass()) for kind in kinds}
        async with contextlib.AsyncExitStack() as stack:
            for kind in kinds:
                await stack.enter_async_context(entries[kind].lock)
            now = time.monotonic()
            todo: list[tuple[Kind, int]] = []
            for kind, entry in entries.items():
                if entry.started < 0 or now - entry.started >= self.ttl:
                    entry.previous = entry.sizes  # with the stale relations' sizes carried over
                    entry.sizes, entry.stale, entry.started = {}, set(), now
                todo += [(kind, oid) for oid in wanted[kind] if oid not in entry.sizes or oid in entry.stale]
            for start in range(0, len(todo), SIZE_BATCH):
                batch = todo[start : start + SIZE_BATCH]
                for kind, oid, locked, size in await self._measure_batch(datname, rows, batch):
                    entry = entries[kind]
                    if locked:
                        entry.stale.add(oid)
                        entry.sizes[oid] = entry.sizes.get(oid, entry.previous.get(oid))
                    else:
                        entry.stale.discard(oid)
                        entry.sizes[oid] = size
        return {
            kind: Sizes(
                {oid: entry.sizes.get(oid) for oid in wanted[kind]},
                sum(1 for oid in wanted[kind] if oid in entry.stale),
            )
            for kind, entry in entries.items()
        }

    async def _measure_batch(
        self, datname: str, rows: RowsFn, batch: list[tuple[Kind, int]]
    ) -> list[tuple[Kind, int, bool, int | None]]:
        """(kind, oid, locked, size) of each relation of the batch; all of them locked when a lock taken after
        the pg_locks reading keeps the batch waiting twice (the second time after a fresh reading)."""
        oids: dict[Kind, list[int]] = {}
        for kind, oid in batch:
            oids.setdefault(kind, []).append(oid)
        kinds = tuple(k for k in ("table", "index") if k in oids)
        kind_of = {oid: kind for kind, oid in batch}
        for attempt in range(2):
            locked = await self.locked(datname, rows, fresh=attempt > 0)
            try:
                # The oids travel as int8[]: left to infer, the parameter costs twice as much to convert.
                wanted = tuple(oids[k] for k in kinds)
                found = await (
                    rows(_SQL[kinds], (locked, *wanted)) if locked else rows(_NONE_LOCKED[kinds], wanted)
                )
                return [(kind_of[int(r[0])], int(r[0]), bool(r[1]), r[2]) for r in found]
            except psycopg.errors.LockNotAvailable:
                continue
        return [(kind, oid, True, None) for kind, oid in batch]
