"""The scheduler reads one injected clock: the schedule tests give the same result whatever the real time is.

A real tick inside a schedule's catch-up window (here Sunday and Monday 03:00 UTC plus `catch_up: 6h`) used to
fire beside the one a test injected; each moment below is a real clock (time-machine moves `time.time` and
`datetime.now`) at which the schedule tests run again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from tests.responder import test_schedules as schedule_tests
from tests.support.responder import ClientFactory, ConfigFactory, Recorder

REAL_CLOCKS = [
    datetime(2026, 12, 7, 8, 30, tzinfo=UTC),  # Monday 08:30: where CI failed
    datetime(2026, 11, 29, 3, 0, 30, tzinfo=UTC),  # Sunday, just after the test schedules' tick
    datetime(2026, 11, 29, 8, 59, tzinfo=UTC),  # Sunday, the end of the catch-up window
    datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC),  # Wednesday, before midnight
    datetime(2026, 12, 5, 12, 0, tzinfo=UTC),  # Saturday noon
]


@pytest.mark.parametrize("real", REAL_CLOCKS, ids=lambda d: d.strftime("%a-%H%M"))
async def test_catch_up_whatever_the_real_time(
    real: datetime, make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    with time_machine.travel(real, tick=True):
        await schedule_tests.test_catch_up_runs_a_missed_tick_once_at_start_up(
            make_config, client_for, recorder
        )


@pytest.mark.parametrize("real", REAL_CLOCKS, ids=lambda d: d.strftime("%a-%H%M"))
async def test_one_tick_once_whatever_the_real_time(
    real: datetime, make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    with time_machine.travel(real, tick=True):
        await schedule_tests.test_a_tick_is_decided_once(make_config, client_for, recorder)
