"""Relation sizes, measured once per scrape however many collectors ask for them.

The tables collector needs the size of every index of its tables and the indexes collector the size of each
index; measuring is what costs (a lock and a stat per fork), so the second asker awaits the first's results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

SIZE_BATCH = 1000
_FAILED = object()

# A table's size is pg_table_size: every fork (main, free space map, visibility map) with its TOAST table and
# TOAST index. An index's is pg_relation_size, its main fork: the other forks are a few pages at most and
# stat-ing them would double the cost of measuring 30,000 indexes.
_SQL = {
    "table": "SELECT r::int8, pg_table_size(r)::int8 FROM unnest(%s::oid[]) AS r",
    "index": "SELECT r::int8, pg_relation_size(r)::int8 FROM unnest(%s::oid[]) AS r",
}

RowsFn = Callable[[str, Any], Awaitable[list[tuple[Any, ...]]]]


class SizeUnavailable(Exception):
    """Another collector was measuring these relations and failed."""


class RelationSizes:
    """Sizes of relations by (database, oid) for one scrape."""

    def __init__(self) -> None:
        self._sizes: dict[tuple[str, int], asyncio.Future[Any]] = {}

    async def measure(
        self, datname: str, rows: RowsFn, oids: Sequence[int], kind: str
    ) -> dict[int, int | None]:
        """Bytes on disk of each oid of `kind` ("table" or "index"); None for a relation dropped meanwhile.

        Each batch of SIZE_BATCH relations is its own statement: with autocommit its locks are released at
        once, so 10,000 tables never fill the lock table.
        """
        loop = asyncio.get_running_loop()
        mine: list[int] = []
        for oid in oids:
            key = (datname, oid)
            if key not in self._sizes:
                self._sizes[key] = loop.create_future()
                mine.append(oid)
        try:
            for start in range(0, len(mine), SIZE_BATCH):
                for oid, size in await rows(_SQL[kind], (mine[start : start + SIZE_BATCH],)):
                    self._sizes[(datname, oid)].set_result(size)
        finally:
            for oid in mine:
                future = self._sizes[(datname, oid)]
                if not future.done():
                    future.set_result(_FAILED)
        result: dict[int, int | None] = {}
        for oid in oids:
            size = await self._sizes[(datname, oid)]
            if size is _FAILED:
                raise SizeUnavailable(f"sizes in {datname} could not be measured")
            result[oid] = size
        return result
