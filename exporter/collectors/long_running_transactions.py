"""pg_stat_activity: transactions open longer than a threshold, and the age of the oldest one."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import Field

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions
from pgwarden.durations import Duration

COUNT = gauge(
    "pg_long_running_transactions",
    "Transactions (not autovacuum's) open longer than collectors.long_running_transactions.threshold.",
)
OLDEST = gauge(
    "pg_long_running_transactions_oldest_timestamp_seconds",
    "Age of the oldest open transaction (not autovacuum's), in seconds; 0 when there is none.",
)


class LongRunningTransactionsOptions(CollectorOptions):
    threshold: Duration = Field(default=60.0, gt=0)  # postgres_exporter's default: one minute


class LongRunning(NamedTuple):
    transactions: int
    oldest_seconds: float


# postgres_exporter's filter (not idle, not autovacuum, in a transaction), minus the exporter's own session
_SQL = """
SELECT count(*) FILTER (WHERE age >= %s)::int8 AS transactions, coalesce(max(age), 0)::float8 AS oldest_seconds
FROM (SELECT extract(epoch FROM clock_timestamp() - xact_start) AS age
      FROM pg_stat_activity
      WHERE state IS DISTINCT FROM 'idle' AND query NOT LIKE 'autovacuum:%%' AND xact_start IS NOT NULL
        AND pid <> pg_backend_pid()) a
"""


class LongRunningTransactionsCollector(RowsCollector[LongRunning, LongRunningTransactionsOptions]):
    name = "long_running_transactions"
    source = "pg_stat_activity"
    options_model = LongRunningTransactionsOptions
    families = (COUNT, OLDEST)  # in the order of LongRunning's fields
    row = LongRunning
    sql = _SQL

    def params(self) -> Any:
        return (self.options.threshold,)
