"""pg_locks: locks held per database and mode (every mode present, zero when none), and waiting locks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.db import Session
from exporter.exposition import Exposition

COUNT = gauge("pg_locks_count", "Number of locks (held or awaited), by database and lowercase lock mode.")
WAITING = gauge(
    "pg_locks_waiting", "Number of lock requests not yet granted (sessions waiting), by database."
)

MODES = (
    "accesssharelock", "rowsharelock", "rowexclusivelock", "shareupdateexclusivelock", "sharelock",
    "sharerowexclusivelock", "exclusivelock", "accessexclusivelock", "sireadlock",
)  # fmt: skip

_SQL = """
SELECT d.datname, m.mode, count(l.locktype)::int8,
       count(l.locktype) FILTER (WHERE NOT l.granted)::int8
FROM pg_database d
CROSS JOIN unnest(%s::text[]) AS m(mode)
LEFT JOIN pg_locks l ON l.database = d.oid AND lower(l.mode) = m.mode
WHERE d.datallowconn
GROUP BY 1, 2
ORDER BY 1, 2
"""


class LocksCollector(Collector):
    name = "locks"
    source = "pg_locks"
    families = (*with_labels(("datname", "mode"), COUNT), *with_labels(("datname",), WAITING))

    async def fetch(self, session: Session) -> Any:
        return await session.rows(_SQL, (list(MODES),))

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, rows in results:
            waiting: dict[str, int] = {}
            for datname, mode, held, not_granted in rows:
                out.add(COUNT, out.labels(("datname", "mode"), (datname, mode)), held)
                waiting[datname] = waiting.get(datname, 0) + not_granted
            for datname, count in waiting.items():
                out.add(WAITING, out.labels(("datname",), (datname,)), count)
