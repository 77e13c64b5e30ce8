"""The time the responders of the tests live at."""

from __future__ import annotations

from datetime import UTC, datetime

# The time the responders of the tests live at: a Monday noon, after the tests' Sunday 03:00 ticks and outside
# every test schedule's catch-up window, so no tick fires at start-up whatever the real time is
# (tests/responder/test_clock.py runs the schedule tests under several real clocks to prove it).
TEST_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def frozen_clock() -> datetime:
    """The responders' clock in the tests: TEST_NOW."""
    return TEST_NOW
