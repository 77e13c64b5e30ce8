"""Cron arithmetic for schedules: the next tick after a moment, the last one at or before it (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter


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
