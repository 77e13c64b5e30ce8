"""The `schedules:` section's shape (stage 1) and the clock arithmetic; `responder.config` resolves it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from croniter import croniter
from pydantic import Field, field_validator

from pgwarden.config import StrictModel
from pgwarden.durations import Duration
from responder.core import TargetKind
from responder.principals import NAME_RE

# What a scheduled TABLE action gets when its target names no table: the action selects tables itself
# (vacuum_analyze with `tables: stale_analyze`).
ANY_TABLE = "*"


class ScheduleSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    cron: str  # five fields, UTC
    catch_up: Duration = Field(default=0.0, ge=0)  # a tick missed by at most this runs once at start-up
    action: str
    target: dict[str, str] = {}  # the labels an alert would carry: dbidentifier/aws_region, target/datname
    params: dict[str, Any] = {}
    mode: Literal["dry-run", "enforce"] | None = None
    cooldown: Duration = 0.0
    max_per_day: int | None = Field(default=None, ge=0)
    require_approval: bool | None = None
    timeout: Duration = Field(default=21600.0, gt=0)  # 6h: scheduled jobs (drills) are long

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value


def next_after(cron: str, moment: datetime) -> datetime:
    """The first tick strictly after `moment` (UTC)."""
    nxt: datetime = croniter(cron, moment.astimezone(UTC)).get_next(datetime)
    return nxt.astimezone(UTC)


def last_at_or_before(cron: str, moment: datetime) -> datetime:
    """The latest tick at or before `moment` (UTC)."""
    at = moment.astimezone(UTC)
    if at.second == 0 and at.microsecond == 0 and croniter.match(cron, at):
        return at
    prev: datetime = croniter(cron, at).get_prev(datetime)
    return prev.astimezone(UTC)


def target_labels(kind: TargetKind, given: dict[str, str]) -> dict[str, str]:
    """A schedule's target as alert labels; a TABLE target without a table selects any (`*`)."""
    labels = dict(given)
    if kind is TargetKind.TABLE:
        labels.setdefault("schemaname", ANY_TABLE)
        labels.setdefault("relname", ANY_TABLE)
    return labels
