"""pg_stat_activity: backends by state, transaction and query ages, long-running counts, connection ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.config import ActivityOptions
from exporter.db import Session
from exporter.exposition import Exposition

GROUP_LABELS = (
    "datname", "state", "usename", "application_name", "backend_type", "wait_event_type", "wait_event",
)  # fmt: skip
COUNT = gauge("pg_stat_activity_count", "Number of backends in this state.")
MAX_TX = gauge("pg_stat_activity_max_tx_duration", "Longest open transaction of these backends, in seconds.")
OLDEST = gauge(
    "pg_stat_activity_oldest_query_seconds",
    "Age of the oldest query of client backends by state (query_start to now); 0 when there is none.",
)
LONG_RUNNING = gauge(
    "pg_stat_activity_long_running_queries",
    "Active client backends whose query has run longer than `threshold` seconds.",
)
RATIO = gauge("pg_stat_activity_connections_ratio", "Client backends divided by max_connections.")

_GROUPS_SQL = """
SELECT coalesce(datname, ''), coalesce(state, ''), coalesce(usename, ''), coalesce(application_name, ''),
       coalesce(backend_type, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''),
       count(*)::int8,
       coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
FROM pg_stat_activity
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
_OLDEST_SQL = """
SELECT d.datname, st.state,
       coalesce(max(extract(epoch FROM clock_timestamp() - a.query_start)), 0)::float8
FROM pg_database d
CROSS JOIN unnest(ARRAY['active', 'idle in transaction', 'idle in transaction (aborted)',
                        'fastpath function call']) AS st(state)
LEFT JOIN pg_stat_activity a
  ON a.datid = d.oid AND a.state = st.state AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
WHERE d.datallowconn AND NOT d.datistemplate
GROUP BY 1, 2
ORDER BY 1, 2
"""
_LONG_SQL = """
SELECT d.datname, t.threshold, count(a.pid)::int8
FROM pg_database d
CROSS JOIN unnest(%s::int4[]) AS t(threshold)
LEFT JOIN pg_stat_activity a
  ON a.datid = d.oid AND a.backend_type = 'client backend' AND a.state = 'active'
 AND a.pid <> pg_backend_pid()
 AND a.query_start < clock_timestamp() - make_interval(secs => t.threshold)
WHERE d.datallowconn AND NOT d.datistemplate
GROUP BY 1, 2
ORDER BY 1, 2
"""
_RATIO_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend')::float8
       / current_setting('max_connections')::float8
FROM pg_stat_activity
"""


class ActivityCollector(Collector):
    name = "activity"
    source = "pg_stat_activity"
    families = (
        *with_labels(GROUP_LABELS, COUNT, MAX_TX),
        *with_labels(("datname", "state"), OLDEST),
        *with_labels(("datname", "threshold"), LONG_RUNNING),
        RATIO,
    )
    options: ActivityOptions

    async def fetch(self, session: Session) -> Any:
        thresholds = list(self.options.long_running_thresholds)
        return (
            await session.rows(_GROUPS_SQL),
            await session.rows(_OLDEST_SQL),
            await session.rows(_LONG_SQL, (thresholds,)),
            (await session.rows(_RATIO_SQL))[0][0],
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, (groups, oldest, long_running, ratio) in results:
            for row in groups:
                lbl = out.labels(GROUP_LABELS, row[:7])
                out.add(COUNT, lbl, row[7])
                out.add(MAX_TX, lbl, row[8])
            for datname, state, age in oldest:
                out.add(OLDEST, out.labels(("datname", "state"), (datname, state)), age)
            for datname, threshold, count in long_running:
                out.add(LONG_RUNNING, out.labels(("datname", "threshold"), (datname, threshold)), count)
            out.add(RATIO, out.labels((), ()), ratio)
