"""The one clock the scheduler and the drill sweeper read: injected, so tests (and a replay) choose the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""The current time, timezone-aware (UTC)."""


def system_clock() -> datetime:
    return datetime.now(UTC)
