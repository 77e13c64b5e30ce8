"""pg_locks: locks held per database and mode (every mode present, zero when none), and waiting locks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Exposition

COUNT = gauge(
    "pg_locks_count",
    "Number of locks (held or awaited), by database and lowercase lock mode.",
    ("datname", "mode"),
)
WAITING = gauge(
    "pg_locks_waiting",
    "Number of lock requests not yet granted (sessions waiting), by database.",
    ("datname",),
)

MODES = (
    "accesssharelock", "rowsharelock", "rowexclusivelock", "shareupdateexclusivelock", "sharelock",
    "sharerowexclusivelock", "exclusivelock", "accessexclusivelock", "sireadlock",
)  # fmt: skip


class Locks(NamedTuple):
    datname: str
    mode: str
    locks: int
    waiting: int


_SQL = """
SELECT d.datname, m.mode, count(l.locktype)::int8 AS locks,
       count(l.locktype) FILTER (WHERE NOT l.granted)::int8 AS waiting
FROM pg_database d
CROSS JOIN unnest(%s::text[]) AS m(mode)
LEFT JOIN pg_locks l ON l.database = d.oid AND lower(l.mode) = m.mode
WHERE d.datallowconn
GROUP BY 1, 2
ORDER BY 1, 2
"""


class LocksCollector(RowsCollector[Locks, CollectorOptions]):
    name = "locks"
    order = 60
    source = "pg_locks"
    families = (COUNT, WAITING)
    row = Locks
    sql = _SQL

    def params(self) -> Any:
        return (list(MODES),)

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Locks]]]) -> None:
        for _, rows in results:
            waiting: dict[str, int] = {}
            for row in rows:
                out.add(COUNT, out.labels(COUNT.labels, (row.datname, row.mode)), row.locks)
                waiting[row.datname] = waiting.get(row.datname, 0) + row.waiting
            for datname, count in waiting.items():
                out.add(WAITING, out.labels(WAITING.labels, (datname,)), count)
