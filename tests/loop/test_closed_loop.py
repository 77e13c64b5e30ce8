"""The closed loop cancels runaway queries through the alert: the first one, and the next ones.

Each test prints the seconds it measured against the bound the timings give; the assertions only wait for
the outcome with a generous margin, so a loaded machine does not fail them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.loop import INTERVAL, THRESHOLD, Loop, Runaway, decisions, epoch, report

pytestmark = pytest.mark.slow  # a minute of real intervals each

MARGIN = 20.0  # seconds past a bound before a test gives up waiting
DOWNTIME = 20.0  # seconds the responder is stopped in the restart test


def _first_bound(loop: Loop) -> tuple[float, str]:
    """A new alert: scraped, evaluated, then sent after the route's group_wait."""
    t = loop.timings
    bound = INTERVAL + INTERVAL + t.group_wait + 1.0
    return bound, f"scrape {INTERVAL:g}s + evaluation {INTERVAL:g}s + group_wait {t.group_wait:g}s + 1s"


def _refire_bound(loop: Loop) -> tuple[float, str]:
    """The same alert firing again: at worst it waits for the repeat of the last notification, which went out
    before the re-fire, and repeats happen at flushes, every group_interval."""
    t = loop.timings
    bound = INTERVAL + INTERVAL + t.repeat_interval + t.group_interval + 1.0
    return bound, (
        f"scrape {INTERVAL:g}s + evaluation {INTERVAL:g}s + repeat_interval {t.repeat_interval:g}s"
        f" + group_interval {t.group_interval:g}s + 1s"
    )


def _measured(name: str, runaway: Runaway, bound: tuple[float, str]) -> str:
    elapsed = runaway.seconds_over_threshold()
    return (
        f"{name}: {runaway.how} {elapsed:.2f}s after crossing the threshold"
        f" (bound {bound[1]} = {bound[0]:g}s: {'met' if elapsed <= bound[0] else 'MISSED'})"
    )


def _cancel_through_the_alert(loop: Loop, bound: float, seconds: int = 150) -> Runaway:
    runaway = Runaway.start(loop.pg_server, seconds)
    timeout = THRESHOLD + bound + MARGIN
    runaway.wait(timeout)
    assert runaway.stopped, f"the responder did not stop the runaway query in {timeout:g}s ({runaway.how})"
    return runaway


def _done(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda actions: len(decisions(actions)) >= count and all(a["outcome"] for a in decisions(actions))


def _assert_each_cancelled_once(actions: list[dict[str, Any]], runaways: list[Runaway]) -> None:
    """One decision per alert firing (distinct startsAt), each cancelling exactly its query's backend."""
    made = decisions(actions)
    assert len(made) == len(runaways), actions
    assert len({a["alert"]["startsAt"] for a in made}) == len(runaways), made
    for action, runaway in zip(made, runaways, strict=True):
        assert action["outcome"] == "succeeded", action
        assert action["result"]["cancelled"] == [runaway.pid], action
        assert action["result"]["terminated"] == [], action


def test_a_runaway_query_is_cancelled_through_the_alert(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    loop.wait_for_scrapes()
    bound = _first_bound(loop)
    runaway = _cancel_through_the_alert(loop, bound[0])
    report(capsys, "closed loop: " + _measured(f"query over {THRESHOLD:g}s", runaway, bound))
    assert runaway.seconds_over_threshold() > 0
    # the playbook finishes its run (re-check after the grace) a moment after the cancel
    actions = loop.wait_for_actions(_done(1), 15, "the decision has no outcome")
    _assert_each_cancelled_once(actions, [runaway])


def test_a_second_runaway_query_right_after_the_first_is_cancelled_too(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alert resolves and fires again between two of Alertmanager's flushes: its notification log has
    the alert firing already, so only the route's repeat delivers the new firing (issue 9, item 16)."""
    first_bound, refire_bound = _first_bound(loop), _refire_bound(loop)
    assert refire_bound[0] + MARGIN <= 100, f"the responder routes' intervals are too long: {refire_bound[1]}"
    loop.wait_for_scrapes()
    first = _cancel_through_the_alert(loop, first_bound[0])
    second = _cancel_through_the_alert(loop, refire_bound[0])  # started the moment the first one ended
    report(
        capsys,
        "closed loop, two in a row:\n  "
        + "\n  ".join(
            (_measured("first query", first, first_bound), _measured("second query", second, refire_bound))
        ),
    )
    actions = loop.wait_for_actions(_done(2), 15, "two decisions with an outcome")
    _assert_each_cancelled_once(actions, [first, second])


def test_a_runaway_query_crossing_while_the_responder_is_down_is_cancelled_once_after_its_restart(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alertmanager's delivery of the second firing fails while the responder is stopped; its retries
    deliver it after the restart, and the restarted responder (same journal) cancels the query once."""
    loop.wait_for_scrapes()
    timings = loop.timings
    first = _cancel_through_the_alert(loop, _first_bound(loop)[0])
    actions = loop.wait_for_actions(_done(1), 15, "the first decision has no outcome")
    first_flush = epoch(decisions(actions)[0]["timings"]["journaled_at"])
    # Alertmanager sends the resolve at its next flush; after it, the next firing is a change it sends at
    # the following flush instead of waiting for the repeat.
    loop.wait_for_actions(
        lambda acts: any(a["alert"]["status"] == "resolved" for a in acts),
        timings.group_interval + MARGIN,
        "Alertmanager never sent the resolve",
    )
    # Flushes come every group_interval after the first one. Stop 2 s after one: the second query crosses
    # the threshold THRESHOLD s later, and the next flush (or a new group's group_wait) falls well inside
    # the downtime, so that delivery fails and has to be retried.
    flushes = math.ceil((time.time() - 2.0 - first_flush) / timings.group_interval)
    time.sleep(max(0.0, first_flush + flushes * timings.group_interval + 2.0 - time.time()))
    failed_before = loop.alertmanager_failed_webhooks()
    loop.stop_responder()
    second = Runaway.start(loop.pg_server, 150)
    time.sleep(DOWNTIME)
    failed_during = loop.alertmanager_failed_webhooks() - failed_before
    loop.restart_responder()
    back = time.time()
    # Delivered by the retries of the failed flush, or by the next flush's: within a group_interval.
    bound = timings.group_interval + 1.0
    second.wait(bound + MARGIN)
    assert second.stopped, f"the responder did not stop the second runaway query ({second.how})"
    assert second.ended is not None
    after_restart = second.ended - back
    report(
        capsys,
        f"closed loop, responder down {DOWNTIME:g}s while the second query crossed the threshold:"
        f" Alertmanager's webhook failed {failed_during:g} times meanwhile; the query was {second.how}"
        f" {after_restart:.2f}s after the restart (bound group_interval {timings.group_interval:g}s + 1s ="
        f" {bound:g}s: {'met' if after_restart <= bound else 'MISSED'}),"
        f" {second.seconds_over_threshold():.2f}s after crossing the threshold",
    )
    assert failed_during > 0, "Alertmanager never tried the responder while it was down"
    actions = loop.wait_for_actions(_done(2), 15, "two decisions with an outcome")
    _assert_each_cancelled_once(actions, [first, second])
