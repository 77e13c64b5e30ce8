"""The journal's versioned schema: a journal made before versions is upgraded and read back, replicas starting
together migrate once, a journal newer than the code is refused, a failed migration changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import psycopg
import pytest

from responder.decision import AlertTrigger, Decision, OperatorTrigger, ScheduleTrigger
from responder.journal import (
    Journal,
    JournalTooNew,
    JournalUnavailable,
    PostgresStore,
    SqliteStore,
    Store,
)
from responder.journal.migrations import MIGRATIONS, VERSION_TABLE, Migration
from responder.outcomes import Outcome, State
from tests.support.journal import journal_sql

FIXTURES = Path(__file__).parent / "fixtures"


def load_v1(url: str) -> None:
    """The journal of the fixture (made by the code before versions), loaded as its dump restores it."""
    if url.startswith("sqlite:"):
        dump = (FIXTURES / "journal_v1.sqlite.sql").read_text()
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            db.executescript(dump)
        return
    dump = (FIXTURES / "journal_v1.postgres.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(dump.encode())


def store_for(url: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> Store:
    if url.startswith("sqlite:"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")), migrations=migrations)
    return PostgresStore(url, migrations=migrations)


def decision(dedup_key: str | None) -> Decision:
    trigger = AlertTrigger(
        "PostgresLongRunningQuery", "c0ffee0123456789", "2026-11-24T03:00:00Z", "firing", {}
    )
    return Decision(
        trigger, State.QUEUED, "kill-long-queries", "terminate_queries", "enforce", dedup_key=dedup_key
    )


def has_table(url: str, name: str) -> bool:
    if url.startswith("sqlite:"):
        return bool(
            journal_sql(url, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )
    return bool(journal_sql(url, "SELECT 1 FROM pg_tables WHERE tablename = ?", (name,)))


def versions(url: str) -> list[int]:
    return [int(r[0]) for r in journal_sql(url, f"SELECT version FROM {VERSION_TABLE} ORDER BY version")]


LATEST = MIGRATIONS[-1].version
ALL = [m.version for m in MIGRATIONS]
# A migration the tests add on top of the real ones: DDL that fails if it runs twice.
NOTE = Migration(
    LATEST + 1, "test: a note on each replica", lambda pg: ["ALTER TABLE pgwarden_replicas ADD note TEXT"]
)


async def test_a_journal_made_before_versions_is_upgraded_and_read_back(journal_url: str) -> None:
    load_v1(journal_url)
    journal = Journal(store_for(journal_url), "reader")
    await journal.start()
    try:
        assert journal.store.migrated == ALL  # adopted as version 1 (not created again), then the newer ones
        assert versions(journal_url) == ALL
        rows = {row.id: row for row in await journal.recent(100)}
        assert sorted(rows) == [1, 3, 4, 5, 6, 7, 8]

        ran = rows[1]
        assert (ran.state, ran.outcome, ran.playbook, ran.action, ran.mode) == (
            State.DONE, Outcome.SUCCEEDED, "kill-long-queries", "terminate_queries", "enforce"
        )  # fmt: skip
        assert ran.labels == {
            "alertname": "PostgresLongRunningQuery", "datname": "app", "severity": "critical", "target": "production"
        }  # fmt: skip
        assert ran.plan is not None and ran.plan["candidates"] == [
            {"pid": 4711, "state": "active", "usename": "app"}
        ]
        assert ran.plan["effects"][0]["state"] == "done"
        assert ran.result == {"cancelled": [4711], "terminated": []}
        assert ran.started_at is not None and ran.finished_at is not None
        assert ran.finished_at >= ran.started_at >= ran.created_at
        assert ran.to_json()["alert"]["startsAt"] == "2026-11-24T03:00:00Z"
        assert ran.trigger == AlertTrigger(
            "PostgresLongRunningQuery", "c0ffee0123456789", "2026-11-24T03:00:00Z", "firing", ran.labels
        )

        duplicate = rows[3]
        assert (duplicate.outcome, duplicate.duplicate_of, duplicate.dedup_key) == (
            Outcome.DUPLICATE,
            1,
            None,
        )
        assert (rows[4].outcome, rows[4].playbook, rows[4].labels) == (
            Outcome.UNMATCHED, None, {"alertname": "DiskAlmostFull"}
        )  # fmt: skip
        assert (rows[5].outcome, rows[5].fingerprint, rows[5].error) == (
            Outcome.REJECTED, "ab\\x00cd", "fingerprint contains a NUL character"
        )  # fmt: skip

        pending = rows[6]
        assert (pending.state, pending.outcome, pending.target_key) == (
            State.PENDING,
            None,
            "rds:us-east-1/prod",
        )
        assert await journal.pending() == 1

        drill = rows[7]
        assert (drill.action, drill.alertname, drill.fingerprint, drill.alert_status) == (
            "restore_drill", "weekly-restore-test", "schedule", "scheduled"
        )  # fmt: skip
        assert drill.plan is not None and [e["operation"] for e in drill.plan["effects"]] == [
            "RestoreDBInstanceFromDBSnapshot",
            "DeleteDBInstance",
        ]
        assert drill.result is not None and drill.result["restore_seconds"] == 612.5
        assert drill.trigger == ScheduleTrigger(
            "weekly-restore-test", "2026-11-22T03:00:00.000Z", drill.labels
        )
        assert drill.labels["schedule"] == "weekly-restore-test"
        assert [r.id for r in await journal.ended("restore_drill", (Outcome.SUCCEEDED,), 0.0)] == [7]
        assert await journal.is_decided("schedule:weekly-restore-test|2026-11-22T03:00:00.000Z")

        recovery = rows[8]
        assert (recovery.action, recovery.owner, recovery.alert_status, recovery.outcome) == (
            "recover", "recover:ops-laptop:99:0a1b2c3d", "manual", Outcome.FAILED
        )  # fmt: skip
        assert recovery.plan is not None and recovery.plan["steps"]["window"]["done"] is True
        assert recovery.labels == {"instance": "prod", "region": "us-east-1", "to": "2026-11-24T14:30:00Z"}
        assert recovery.trigger == OperatorTrigger("recover", "prod", "2026-11-24T14:30:00Z", recovery.labels)

        # ... and it goes on: ids go on from the old ones, a journaled key still deduplicates
        again, new = await journal.record([decision(ran.dedup_key), decision("new|key")])
        assert (again.outcome, again.duplicate_of) == (Outcome.DUPLICATE, 1)
        assert (new.state, new.outcome) == (State.QUEUED, None) and 8 < again.id < new.id
        assert await journal.rows() == 9
    finally:
        await journal.close()
    again = Journal(store_for(journal_url), "again")
    await again.start()
    try:
        assert again.store.migrated == []  # current: nothing to do
    finally:
        await again.close()
    assert versions(journal_url) == ALL


async def test_a_fresh_journal_is_created_at_the_newest_version(journal_url: str) -> None:
    journal = Journal(store_for(journal_url), "fresh")
    await journal.start()
    await journal.close()
    assert journal.store.migrated == [m.version for m in MIGRATIONS]
    assert versions(journal_url) == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize("made_before_versions", [False, True])
async def test_two_replicas_starting_together_migrate_once(
    journal_url: str, made_before_versions: bool
) -> None:
    if made_before_versions:
        load_v1(journal_url)
    migrations = (*MIGRATIONS, NOTE)  # NOTE's ALTER TABLE fails if it runs twice
    first = Journal(store_for(journal_url, migrations), "first")
    second = Journal(store_for(journal_url, migrations), "second")
    await asyncio.gather(first.start(), second.start())
    try:
        applied = sorted(first.store.migrated + second.store.migrated)
        assert applied == [*ALL, NOTE.version]
        assert versions(journal_url) == [*ALL, NOTE.version]
        await first.heartbeat(30.0)
        await second.heartbeat(30.0)
        owners = {r[0] for r in journal_sql(journal_url, "SELECT owner, note FROM pgwarden_replicas")}
        assert {"first", "second"} <= owners
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_a_journal_newer_than_the_code_is_refused(journal_url: str) -> None:
    journal = Journal(store_for(journal_url, (*MIGRATIONS, NOTE)), "newer")
    await journal.start()
    await journal.close()
    older = Journal(store_for(journal_url), "older")
    with pytest.raises(JournalTooNew) as refused:
        await older.start()
    assert (refused.value.found, refused.value.known) == (LATEST + 1, LATEST)
    assert f"version {LATEST + 1}" in str(refused.value) and f"version {LATEST}" in str(refused.value)
    with pytest.raises(JournalUnavailable, match="closed"):
        await older.ping()  # not opened


async def test_a_failed_migration_leaves_the_journal_as_it_was(journal_url: str) -> None:
    load_v1(journal_url)
    broken = Migration(
        LATEST + 1,
        "test: fails half-way",
        lambda pg: ["ALTER TABLE pgwarden_replicas ADD note TEXT", "NOT SQL"],
    )
    journal = Journal(store_for(journal_url, (*MIGRATIONS, broken)), "broken")
    with pytest.raises(JournalUnavailable, match="syntax"):
        await journal.start()
    assert not has_table(journal_url, VERSION_TABLE)  # not even version 1's adoption was kept
    assert not has_table(journal_url, "pgwarden_sessions")  # nor the tables of the migrations before it
    assert len(journal_sql(journal_url, "SELECT owner FROM pgwarden_replicas")) == 1  # still without `note`
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.UndefinedColumn)):
        journal_sql(journal_url, "SELECT note FROM pgwarden_replicas")
