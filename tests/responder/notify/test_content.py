"""What a message says about a decision: what, where, why, the result, who decided, when, the link; schedules
and operator commands in their own words; and the escaping each format needs."""

from __future__ import annotations

from responder.journal import Journal
from responder.notify.content import Content, capped, content, digest_text, slack_text, teams_text
from responder.notify.model import Digest, Notice
from responder.outcomes import Outcome, State
from tests.responder.notify.decisions import (
    PUBLIC_URL,
    approve_and_run,
    journaled,
    notice,
    operator,
    schedule,
)


def _facts(c: Content) -> dict[str, dict[str, str]]:
    return {s.title: {f.label: f.value for f in s.facts} for s in c.sections}


async def test_a_pending_alert_decision_says_what_where_why_and_how_to_decide(journal: Journal) -> None:
    row = await journaled(journal)
    c = content(notice(row, approvers=("alice", "bob")))
    facts = _facts(c)
    assert c.pending and not c.dry_run and c.status == "waiting for approval"
    assert c.title == f"#{row.id} cancel-long-query: waiting for approval"
    assert facts["What"] == {
        "Playbook": "cancel-long-query",
        "Action": "terminate_queries",
        "Mode": "enforce",
    }
    assert facts["Where"] == {
        "Target": "prod (db.internal:5432/shop) database shop",
        "Database": "shop",
        "Instance": "prod",
    }
    assert facts["Why"]["Alert"] == "PostgresLongRunningQuery (firing)"
    assert facts["Why"]["Labels"] == "datname=shop, severity=critical, target=prod"
    assert facts["Plan"] == {"Plan": "made when it runs, after the approval"}
    assert c.link == f"{PUBLIC_URL}/ui/actions/{row.id}"
    assert [name for name, _ in c.approval_links] == ["alice", "bob"]
    assert c.decided is None


async def test_a_finished_decision_says_the_plan_the_result_and_who_approved_it(journal: Journal) -> None:
    pending = await journaled(journal)
    row = await approve_and_run(journal, pending.id)
    c = content(notice(row, approvers=("alice",)))
    facts = _facts(c)
    assert not c.pending and c.approval_links == ()  # links only while it waits
    assert c.headline == "cancelled pid 23630 `SELECT pg_sleep(600)` after 7 min in shop"
    assert facts["Plan"]["Backends"].startswith("pid 23630 (app in shop, 7 min): SELECT pg_sleep(600)")
    assert facts["Result"]["Outcome"] == "succeeded"
    assert facts["Result"]["Decided by"] == "approved by alice"
    assert facts["Result"]["Cancelled"] == "23630"
    assert c.decided == "approved by alice" and c.emoji == "✅"


async def test_dry_runs_and_failures_say_so(journal: Journal) -> None:
    dry = await journaled(journal, mode="dry-run")
    assert content(notice(dry)).dry_run
    row = await approve_and_run(
        journal, (await journaled(journal)).id, Outcome.FAILED, None, "permission denied"
    )
    c = content(notice(row))
    assert c.tone == "attention" and _facts(c)["Result"]["Error"] == "permission denied"
    assert c.headline == "failed: permission denied"


async def test_schedules_and_operator_commands_read_naturally(journal: Journal) -> None:
    drill = await journaled(
        journal, schedule(run_now=True), State.QUEUED, playbook="weekly-drill", action="restore_drill"
    )
    why = _facts(content(notice(drill)))["Why"]
    assert why == {
        "Schedule": "weekly-drill (run now from the console)",
        "Due at": "2026-12-07T03:00:00.000Z",
        "Labels": "dbidentifier=prod-db",
    }
    recovery = await journaled(journal, operator(), State.RUNNING, playbook="recover", action="recover")
    facts = _facts(content(notice(recovery)))
    assert facts["Why"] == {
        "Command": "pgwarden-responder recover",
        "Subject": "prod-db",
        "For": "2026-12-07T12:00:00.000Z",
    }
    assert facts["Where"]["Instance"] == "prod-db"


def test_a_digest_counts_what_the_rate_limit_held_back() -> None:
    title, sentence = digest_text(Digest(12, (40, 41, 42), f"{PUBLIC_URL}/ui"))
    assert title == "12 more decisions"
    assert sentence == "12 more decisions held back by this receiver's rate limit: #40, #41, #42 and 9 more"
    assert digest_text(Digest(1, (), None))[1] == "1 more decision held back by this receiver's rate limit"


def test_slack_text_escapes_mentions_and_links_and_never_cuts_an_escape() -> None:
    assert (
        slack_text("<!channel> & <https://evil|click>", 100)
        == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    )
    assert slack_text("ping @here and @Channel, mail a@example.com", 100) == (
        "ping @\u200bhere and @\u200bChannel, mail a@example.com"
    )
    cut = slack_text("a" * 8 + "&&&&", 12)
    assert cut == "aaaaaaaa…"  # not "aaaaaaaa&am…"
    assert len(slack_text("<" * 10_000, 3000)) <= 3000 and slack_text("<" * 10_000, 3000).endswith("&lt;…")


def test_teams_text_escapes_markdown_links_and_emphasis() -> None:
    assert teams_text("[click](https://evil) **bold**", 100) == r"\[click\]\(https://evil\) \*\*bold\*\*"
    assert teams_text("two\nlines", 100) == "two lines"
    assert capped("x" * 10, 5) == "xxxx…"


async def test_under_the_two_person_rule_the_message_counts_the_approvals_so_far(journal: Journal) -> None:
    pending = await journaled(journal, playbook="scale-up")
    assert (
        str(await journal.decide(pending.id, True, "alice", 3600, needed={"scale-up": 2}))
        == "approval_recorded"
    )
    row = await journal.get(pending.id)
    assert row is not None and row.state is State.PENDING
    c = content(Notice(row, None, (), approvals_needed=2))
    assert c.pending and c.approvals == "1 of 2 approvals (alice)"
    assert _facts(c)["Result"]["Approvals"] == "1 of 2 approvals (alice)"
    assert content(Notice(row, None, ())).approvals is None  # one approval needed: nothing to count
