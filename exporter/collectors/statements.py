"""pg_stat_statements: the top N statements by total execution time, as counters plus mean and max."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, cap_clause, counter, gauge, render_cut, with_labels
from exporter.config import StatementsOptions
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
QUERY = gauge(P + "query_info", "The statement's normalised text (collectors.statements.include_query); 1.")
VALUE_FAMILIES = (CALLS, SECONDS, ROWS, READ, WRITE, MEAN, MAX)


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
SELECT r.rolname, d.datname, t.queryid::text,
       t.calls::int8, (t.total / 1000)::float8, t.rows::int8, (t.read / 1000)::float8, (t.write / 1000)::float8,
       (t.total / nullif(t.calls, 0) / 1000)::float8, (t.maximum / 1000)::float8,
       (SELECT count(*) FROM grouped)::int8{", t.query" if include_query else ""}
FROM top t
JOIN pg_roles r ON r.oid = t.userid
JOIN pg_database d ON d.oid = t.dbid
ORDER BY t.total DESC
"""


class StatementsCollector(Collector):
    name = "statements"
    # Copying and ranking thousands of entries costs ~10 ms a scrape; counters 30 s old still rate() well.
    default_ttl = 30.0
    source = "pg_stat_statements"
    families = (*with_labels(LABELS, *VALUE_FAMILIES), *with_labels((*LABELS, "query"), QUERY))
    options: StatementsOptions
    _missing_reported = False

    async def fetch(self, session: Session) -> Any:
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
        return await session.rows(sql, (self.options.include_query,))

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for datname, rows in results:
            labels = out.label_rows(LABELS, (r[:3] for r in rows))
            for i, family in enumerate(VALUE_FAMILIES):
                out.add_column(family, labels, (r[3 + i] for r in rows))
            if self.options.include_query:
                for row in rows:
                    out.add(QUERY, out.labels((*LABELS, "query"), (*row[:3], row[11])), 1)
            total = rows[0][10] if rows else 0
            render_cut(out, self.name, datname, total, len(rows))
