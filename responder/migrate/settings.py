"""`migrations:` in responder.yml: the guard's timeouts, watchdog, retries, pre-flight, snapshot, lint and
backfill settings. Every key has the default the documentation gives, so an absent section guards with them."""

from __future__ import annotations

from pydantic import Field

from pgwarden.config import StrictModel
from pgwarden.durations import Duration


class WatchdogSettings(StrictModel):
    # a session waiting behind one of the migration's locks this long: cancel the migration's backend
    blocked_after: Duration = Field(default=2.0, gt=0)


class RetrySettings(StrictModel):
    attempts: int = Field(default=5, ge=1, le=100)
    backoff: Duration = Field(default=10.0, ge=0)
    max_backoff: Duration = Field(default=120.0, ge=0)


class PreflightSettings(StrictModel):
    max_transaction_age: Duration = Field(default=300.0, gt=0)
    max_replica_lag: Duration = Field(default=30.0, gt=0)


class SnapshotSettings(StrictModel):
    default: bool = True  # for targets with `rds:`, before any statement runs
    wait_timeout: Duration = Field(default=1800.0, gt=0)


class LintSettings(StrictModel):
    large_table_rows: int = Field(default=100_000, ge=0)


class BackfillSettings(StrictModel):
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    max_replica_lag: Duration = Field(default=10.0, gt=0)
    pause: Duration = Field(default=0.05, ge=0)


class MigrationsSchema(StrictModel):
    """`migrations:`."""

    lock_timeout: Duration = Field(
        default=2.0, gt=0
    )  # PGOPTIONS of the migration's sessions; the watchdog too
    statement_timeout: Duration = Field(default=3600.0, gt=0)
    watchdog: WatchdogSettings = WatchdogSettings()
    retries: RetrySettings = RetrySettings()
    preflight: PreflightSettings = PreflightSettings()
    snapshot: SnapshotSettings = SnapshotSettings()
    lint: LintSettings = LintSettings()
    backfill: BackfillSettings = BackfillSettings()
