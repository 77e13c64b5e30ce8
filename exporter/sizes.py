"""Relation sizes, measured once per scrape however many collectors ask for them.

The tables collector needs the size of every index of its tables and the indexes collector the size of each
index; measuring is what costs (a lock and a stat per fork), so the second asker waits for the first and
then measures only what is still missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

SIZE_BATCH = 1000

# A table's size is pg_table_size: every fork (main, free space map, visibility map) with its TOAST table and
# TOAST index. An index's is pg_relation_size, its main fork: the other forks are a few pages at most and
# stat-ing them would double the cost of measuring 30,000 indexes.
_SQL = {
    "table": "SELECT r::int8, pg_table_size(r)::int8 FROM unnest(%s::int8[]::oid[]) AS r",
    "index": "SELECT r::int8, pg_relation_size(r)::int8 FROM unnest(%s::int8[]::oid[]) AS r",
}

RowsFn = Callable[..., Awaitable[list[tuple[Any, ...]]]]
Kind = Literal["table", "index"]


class RelationSizes:
    """Sizes of relations by database and oid, for one scrape."""

    def __init__(self) -> None:
        self._sizes: dict[str, dict[int, int | None]] = {}
        self._locks: dict[tuple[str, Kind], asyncio.Lock] = {}

    async def measure(
        self, datname: str, rows: RowsFn, oids: Sequence[int], kind: Kind
    ) -> dict[int, int | None]:
        """Bytes on disk of each oid of `kind`; None for a relation dropped meanwhile.

        Each batch of SIZE_BATCH relations is its own statement: with autocommit its locks are released at
        once, so 10,000 tables never fill the lock table.
        """
        known = self._sizes.setdefault(datname, {})
        lock = self._locks.setdefault((datname, kind), asyncio.Lock())
        async with lock:
            todo = [oid for oid in oids if oid not in known]
            for start in range(0, len(todo), SIZE_BATCH):
                # The oids travel as int8[]: left to infer, the parameter costs twice as much to convert.
                batch = await rows(_SQL[kind], (todo[start : start + SIZE_BATCH],))
                known.update(batch)
        return {oid: known.get(oid) for oid in oids}
