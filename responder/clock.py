"""The one clock the scheduler and the drill sweeper read (injected, so tests and a replay choose the time), and
how the responder writes a moment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""The current time, timezone-aware (UTC)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC, to the second, or None."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
