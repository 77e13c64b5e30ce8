"""pg_stat_statements: the top N statements by total execution time, as counters plus mean and max."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field

from exporter.collectors.base import Collector, cap_clause, counter, gauge, render_cut, with_labels
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

log = logging.getLogger("pgwarden.collectors.statements")

P = "pg_stat_statements_"
LABELS = ("user", "datname", "queryid")
CALLS = counter(P + "calls_total", "Times the statement was executed.")
SECONDS = counter(P + "seconds_total", "Total time spent executing the statement, in seconds.")
ROWS = counter(P + "rows_total", "Rows retrieved or affected by the statement.")
READ = counter(P + "block_read_seconds_total", "Time the statement spent reading blocks, in seconds.")
WRITE = counter(P + "block_write_seconds_total", "Time the statement spent writing blocks, in seconds.")
MEAN = gauge(P + "mean_seconds", "Mean execution time of the statement, in seconds.")
MAX = gauge(P + "max_seconds", "Longest execution of the statement, in seconds.")
QUERY = gauge(
    P + "query_info",
    "The statement's normalised text (collectors.statements.include_query); 1.",
    (*LABELS, "query"),
    "collectors.statements.include_query is off (the default)",
)
VALUE_FAMILIES = (CALLS, SECONDS, ROWS, READ, WRITE, MEAN, MAX)


class StatementsOptions(CollectorOptions):
    include_query: bool = False
    query_max_length: int = Field(default=200, ge=16)


class Statement(NamedTuple):
    user: str
    datname: str
    queryid: str
    calls: int
    seconds: float
    rows: int
    read_seconds: float
    write_seconds: float
    mean_seconds: float | None
    max_seconds: float
    total: int  # statements before the cap
    query: str | None  # only with include_query


def statements_sql(version_num: int, top_n: int, include_query: bool, query_length: int) -> str:
    """The query for this server version: columns were renamed in 13 (exec_time) and 17 (shared_blk_*)."""
    if version_num >= 170000:
        total, maximum, read, write = (
            "total_exec_time",
            "max_exec_time",
            "shared_blk_read_time",
            "shared_blk_write_time",
        )
    elif version_num >= 130000:
        total, maximum, read, write = "total_exec_time", "max_exec_time", "blk_read_time", "blk_write_time"
    else:
        total, maximum, read, write = "total_time", "max_time", "blk_read_time", "blk_write_time"
    query = f", left(min(s.query), {int(query_length)}) AS query" if include_query else ""
    query_column = "t.query" if include_query else "NULL::text"
    # Rows differ by toplevel (13+) for the same (userid, dbid, queryid): sum them into one series. Grouping
    # and ranking on the numeric keys (float8 sums: numeric ones cost more), and naming only the top N,
    # costs a third of grouping by the names.
    return f"""
WITH grouped AS (
  SELECT s.userid, s.dbid, s.queryid, sum(s.calls::float8) AS calls, sum(s.{total}) AS total,
         sum(s.rows::float8) AS rows,
         sum(s.{read}) AS read, sum(s.{write}) AS write, max(s.{maximum}) AS maximum{query}
  FROM pg_stat_statements(%s) s
  WHERE s.queryid IS NOT NULL
  GROUP BY s.userid, s.dbid, s.queryid
), top AS (
  SELECT * FROM grouped ORDER BY total DESC {cap_clause(top_n)}
)
SELECT r.rolname AS "user", d.datname, t.queryid::text AS queryid,
       t.calls::int8 AS calls, (t.total / 1000)::float8 AS seconds, t.rows::int8 AS rows,
       (t.read / 1000)::float8 AS read_seconds, (t.write / 1000)::float8 AS write_seconds,
       (t.total / nullif(t.calls, 0) / 1000)::float8 AS mean_seconds, (t.maximum / 1000)::float8 AS max_seconds,
       (SELECT count(*) FROM grouped)::int8 AS total, {query_column} AS query
FROM top t
JOIN pg_roles r ON r.oid = t.userid
JOIN pg_database d ON d.oid = t.dbid
ORDER BY t.total DESC
"""


class StatementsCollector(Collector[list[Statement], StatementsOptions]):
    name = "statements"
    order = 110
    # Copying and ranking thousands of entries costs ~10 ms a scrape; counters 30 s old still rate() well.
    default_ttl = 30.0
    source = "pg_stat_statements (in the DSN's database)"
    options_model = StatementsOptions
    families = (*with_labels(LABELS, *VALUE_FAMILIES), QUERY)
    _missing_reported = False

    async def fetch(self, session: Session) -> list[Statement]:
        found = await session.rows(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'", binary=False
        )
        if not found:
            if not self._missing_reported:
                self._missing_reported = True
                log.warning(
                    "pg_stat_statements is not installed in the DSN's database: CREATE EXTENSION it there",
                    extra={"datname": session.datname},
                )
            return []
        sql = statements_sql(
            session.server.version_num,
            self.limits.statements_top_n,
            self.options.include_query,
            self.options.query_max_length,
        )
        return await session.typed(Statement, sql, (self.options.include_query,))

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Statement]]]) -> None:
        for datname, rows in results:
            labels = out.label_rows(LABELS, ((r.user, r.datname, r.queryid) for r in rows))
            out.add_column(CALLS, labels, [r.calls for r in rows])
            out.add_column(SECONDS, labels, [r.seconds for r in rows])
            out.add_column(ROWS, labels, [r.rows for r in rows])
            out.add_column(READ, labels, [r.read_seconds for r in rows])
            out.add_column(WRITE, labels, [r.write_seconds for r in rows])
            out.add_column(MEAN, labels, [r.mean_seconds for r in rows])
            out.add_column(MAX, labels, [r.max_seconds for r in rows])
            if self.options.include_query:
                for r in rows:
                    out.add(QUERY, out.labels(QUERY.labels, (r.user, r.datname, r.queryid, r.query)), 1)
            render_cut(out, self.name, datname, rows[0].total if rows else 0, len(rows))
