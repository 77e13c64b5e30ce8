"""An approved decision runs as it was journaled, never in a mode the config took since (issue 19, hole 3).

A terminate_queries decision waits for approval in one responder; the responder restarts on the same SQLite
journal with the other mode, and an approver approves through the API. A real backend runs pg_sleep the whole
time: if the mode changed the approval expires with the reason and the backend is never signalled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from tests.responder.playbooks.test_terminate_queries import Sessions, kill_config, sessions, victims_db
from tests.support.responder import APPROVE, ClientFactory, ConfigFactory
from tests.support.roles import APP_PASSWORD, APP_ROLE, RESPONDER_PASSWORD, RESPONDER_ROLE
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["sessions", "victims_db"]  # the fixtures, shared with the terminate_queries tests


def held_kill(make_config: ConfigFactory, sessions: Sessions, mode: str, approvers: Any) -> Any:
    """The `kill` playbook (terminate_queries) on the victims' server, held for approval, in `mode`."""
    dsn = sessions.server.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)
    return kill_config(partial(make_config, approvers=approvers), dsn, mode, held=True)


Approval = Callable[[str, str], Awaitable[tuple[dict[str, Any], int, dict[str, Any]]]]


@pytest.fixture
def decided_then_approved(
    make_config: ConfigFactory, client_for: ClientFactory, sessions: Sessions, approvers: Any
) -> Approval:
    """`await decided_then_approved(decided_in, approved_in)`: a long pg_sleep, an alert about it decided under
    `decided_in` (pending), a restart under `approved_in`, the approval: (the victim before, the approval's
    HTTP status, the row when done)."""

    async def approve(decided_in: str, approved_in: str) -> tuple[dict[str, Any], int, dict[str, Any]]:
        sessions.start("victim", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(60)", app="t-victim")
        before = sessions.wait_active(["victim"])["t-victim"]
        await asyncio.sleep(1.2)  # past min_duration
        first = await client_for(held_kill(make_config, sessions, decided_in, approvers))
        (d,) = await post_alerts(first, alert("PostgresLongRunningQuery", datname=sessions.dbname))
        pending = await wait_done(first, d["id"])
        assert pending["state"] == "pending" and pending["mode"] == decided_in, pending
        await first.close()
        restarted = await client_for(held_kill(make_config, sessions, approved_in, approvers))
        resp = await restarted.post(f"/actions/{d['id']}/approve", headers=APPROVE)
        row = await wait_done(restarted, d["id"])
        return before, resp.status, row

    return approve


def still_sleeping(sessions: Sessions, before: dict[str, Any]) -> None:
    """The victim's query is still the one that ran before: never cancelled nor terminated."""
    now = sessions.activity().get("t-victim")
    assert now is not None, "the victim's session is gone"
    assert (now["pid"], now["state"], now["query_start"]) == (before["pid"], "active", before["query_start"])
    assert sessions.procs["victim"].poll() is None


@pytest.mark.parametrize(("decided_in", "approved_in"), [("dry-run", "enforce"), ("enforce", "dry-run")])
async def test_an_approval_under_a_changed_mode_expires_and_signals_nothing(
    decided_then_approved: Approval, sessions: Sessions, decided_in: str, approved_in: str
) -> None:
    before, status, row = await decided_then_approved(decided_in, approved_in)
    assert status == 410, row
    assert row["state"] == "done" and row["outcome"] == "expired", row
    assert row["mode"] == decided_in
    assert f"mode changed from {decided_in} to {approved_in}" in row["error"], row
    await asyncio.sleep(0.5)  # a grace's worth: a cancel would have landed by now
    still_sleeping(sessions, before)


@pytest.mark.parametrize(("mode", "outcome"), [("dry-run", "dry_run"), ("enforce", "succeeded")])
async def test_an_approval_under_the_same_mode_runs_as_journaled(
    decided_then_approved: Approval, sessions: Sessions, mode: str, outcome: str
) -> None:
    before, status, row = await decided_then_approved(mode, mode)
    assert status == 202 and row["outcome"] == outcome, row
    if mode == "dry-run":
        assert [b["pid"] for b in row["plan"]["backends"]] == [before["pid"]], row["plan"]
        still_sleeping(sessions, before)
    else:
        assert row["result"]["cancelled"] == [before["pid"]], row["result"]
        _, err = sessions.procs["victim"].communicate(timeout=10)
        assert "canceling statement due to user request" in err
