"""pg_stat_activity: backends by state, transaction and query ages, long-running counts, connection ratio, and
the autovacuum workers' start times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pydantic import PositiveInt

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

GROUP_LABELS = (
    "datname", "state", "usename", "application_name", "backend_type", "wait_event_type", "wait_event",
)  # fmt: skip
COUNT = gauge("pg_stat_activity_count", "Number of backends in this state.", GROUP_LABELS)
MAX_TX = gauge(
    "pg_stat_activity_max_tx_duration",
    "Longest open transaction of these backends, in seconds.",
    GROUP_LABELS,
)
OLDEST = gauge(
    "pg_stat_activity_oldest_query_seconds",
    "Age of the oldest query of client backends by state (query_start to now); 0 when there is none.",
    ("datname", "state"),
)
LONG_RUNNING = gauge(
    "pg_stat_activity_long_running_queries",
    "Active client backends whose query has run longer than `threshold` seconds.",
    ("datname", "threshold"),
)
RATIO = gauge("pg_stat_activity_connections_ratio", "Client backends divided by max_connections.")
AUTOVACUUM = gauge(
    "pg_stat_activity_autovacuum_timestamp_seconds",
    "Start time of the transaction of each autovacuum worker, by the table it works on (Unix time).",
    ("relname",),
    "no autovacuum worker is running",
)


class ActivityOptions(CollectorOptions):
    long_running_thresholds: tuple[PositiveInt, ...] = (60, 120, 300)


class Group(NamedTuple):
    datname: str
    state: str
    usename: str
    application_name: str
    backend_type: str
    wait_event_type: str
    wait_event: str
    backends: int
    max_tx_duration: float


class Oldest(NamedTuple):
    datname: str
    state: str
    age: float


class LongRunning(NamedTuple):
    datname: str
    threshold: int
    queries: int


class Ratio(NamedTuple):
    ratio: float


class Autovacuum(NamedTuple):
    relname: str
    timestamp_seconds: float


class Activity(NamedTuple):
    groups: list[Group]
    oldest: list[Oldest]
    long_running: list[LongRunning]
    connections_ratio: float
    autovacuum: list[Autovacuum]


# postgres_exporter's query (collector/pg_stat_activity.go): a series for every database (templates included)
# and each of the six states, 0 where no backend is in it, so an idle database has its series too; backends
# without a database (background workers) or a state are left out, and so is the exporter's own connection.
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
          "disabled")  # fmt: skip
_GROUPS_SQL = """
SELECT d.datname, s.state, coalesce(a.usename, '') AS usename,
       coalesce(a.application_name, '') AS application_name, coalesce(a.backend_type, '') AS backend_type,
       coalesce(a.wait_event_type, '') AS wait_event_type, coalesce(a.wait_event, '') AS wait_event,
       coalesce(a.backends, 0)::int8 AS backends, coalesce(a.max_tx_duration, 0)::float8 AS max_tx_duration
FROM unnest(%s::text[]) AS s(state)
CROSS JOIN pg_database d
LEFT JOIN (
    SELECT datname, state, usename, application_name, backend_type, wait_event_type, wait_event,
           count(*) AS backends, max(extract(epoch FROM now() - xact_start))::float8 AS max_tx_duration
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
    GROUP BY datname, state, usename, application_name, backend_type, wait_event_type, wait_event
) a ON a.state = s.state AND a.datname = d.datname
"""
_OLDEST_SQL = """
SELECT d.datname, st.state,
       coalesce(max(extract(epoch FROM clock_timestamp() - a.query_start)), 0)::float8 AS age
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
SELECT d.datname, t.threshold, count(a.pid)::int8 AS queries
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
SELECT (count(*) FILTER (WHERE backend_type = 'client backend')::float8
        / current_setting('max_connections')::float8) AS ratio
FROM pg_stat_activity
"""
# postgres_exporter's query: the worker's query is "autovacuum: VACUUM ANALYZE schema.table" (and the like)
_AUTOVACUUM_SQL = """
SELECT split_part(query, '.', 2) AS relname, extract(epoch FROM min(xact_start))::float8 AS timestamp_seconds
FROM pg_stat_activity
WHERE query LIKE 'autovacuum:%' AND xact_start IS NOT NULL
GROUP BY 1  -- tables of one name in two schemas or databases: the earliest start, one series
ORDER BY 1
"""


class ActivityCollector(Collector[Activity, ActivityOptions]):
    name = "activity"
    order = 30
    source = "pg_stat_activity"
    options_model = ActivityOptions
    families = (COUNT, MAX_TX, OLDEST, LONG_RUNNING, RATIO, AUTOVACUUM)

    async def fetch(self, session: Session) -> Activity:
        return Activity(
            await session.typed(Group, _GROUPS_SQL, (list(STATES),)),
            await session.typed(Oldest, _OLDEST_SQL),
            await session.typed(LongRunning, _LONG_SQL, (list(self.options.long_running_thresholds),)),
            (await session.typed(Ratio, _RATIO_SQL))[0].ratio,
            await session.typed(Autovacuum, _AUTOVACUUM_SQL),
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Activity]]) -> None:
        for _, activity in results:
            for g in activity.groups:
                values = (
                    g.datname,
                    g.state,
                    g.usename,
                    g.application_name,
                    g.backend_type,
                    g.wait_event_type,
                )
                lbl = out.labels(GROUP_LABELS, (*values, g.wait_event))
                out.add(COUNT, lbl, g.backends)
                out.add(MAX_TX, lbl, g.max_tx_duration)
            for o in activity.oldest:
                out.add(OLDEST, out.labels(OLDEST.labels, (o.datname, o.state)), o.age)
            for r in activity.long_running:
                out.add(LONG_RUNNING, out.labels(LONG_RUNNING.labels, (r.datname, r.threshold)), r.queries)
            out.add(RATIO, out.labels((), ()), activity.connections_ratio)
            for a in activity.autovacuum:
                out.add(AUTOVACUUM, out.labels(AUTOVACUUM.labels, (a.relname,)), a.timestamp_seconds)
