"""How long server processes have been idle, as postgres_exporter's `process_idle` collector's histogram.

pg_process_idle_seconds{state,application_name}: the backends in an idle state (`idle`, `idle in
transaction`, ...) by how long since their state changed, in upstream's buckets. postgres_exporter reads only
the first row of its query (one state and application); here every (state, application_name) has its series.
Off by default, as there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import RowsCollector
from exporter.collectors.options import OffByDefault
from exporter.exposition import Exposition, Family

BUCKETS = (1, 2, 5, 15, 30, 60, 90, 120, 300)  # postgres_exporter's, in seconds
SECONDS = Family(
    "pg_process_idle_seconds",
    "histogram",
    "Idle time of server processes",
    ("state", "application_name"),
    "no backend is idle",
)


class Idle(NamedTuple):
    state: str
    application_name: str
    seconds: float  # since the backend's state changed


# One row per idle backend (at most max_connections); the histogram is counted from them.
_SQL = """
SELECT state, coalesce(application_name, '') AS application_name,
       greatest(0, extract(epoch FROM clock_timestamp() - state_change))::float8 AS seconds
FROM pg_stat_activity
WHERE state ~ '^idle' AND state_change IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY 1, 2
"""


class ProcessIdleCollector(RowsCollector[Idle, OffByDefault]):
    name = "process_idle"
    source = "pg_stat_activity"
    options_model = OffByDefault
    families = (SECONDS,)
    row = Idle
    sql = _SQL

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Idle]]]) -> None:
        groups: dict[tuple[str, str], list[float]] = {}
        for _, rows in results:
            for row in rows:
                groups.setdefault((row.state, row.application_name), []).append(row.seconds)
        names = (*SECONDS.labels, "le")
        for (state, application), seconds in groups.items():
            for bound in BUCKETS:
                count = sum(1 for s in seconds if s <= bound)
                out.add(SECONDS, out.labels(names, (state, application, bound)), count, "_bucket")
            out.add(SECONDS, out.labels(names, (state, application, "+Inf")), len(seconds), "_bucket")
            labels = out.labels(SECONDS.labels, (state, application))
            out.add(SECONDS, labels, sum(seconds), "_sum")
            out.add(SECONDS, labels, len(seconds), "_count")
