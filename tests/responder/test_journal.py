"""The journal: 503 when it is down, group commit, recovery of dead replicas' work, restart durability."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from responder import keys
from responder.decision import AlertTrigger, Decision
from responder.journal import Journal, SqliteStore, open_store
from responder.outcomes import State
from tests.support.journal import journal_sql
from tests.support.responder import APPROVE, AUTH, ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.webhook import alert, payload, post_alerts, wait_done


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut, like a network partition."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None


@contextlib.asynccontextmanager
async def proxied(dsn: str) -> AsyncIterator[tuple[Proxy, str]]:
    parts = conninfo_to_dict(dsn)
    proxy = Proxy(str(parts["host"]), int(parts["port"]))
    await proxy.start()
    try:
        yield proxy, make_conninfo(dsn, port=str(proxy.port))
    finally:
        if proxy.server is not None:
            await proxy.cut()


async def test_journal_down_is_503_and_recovers(
    make_config: ConfigFactory, client_for: ClientFactory, pg_journal: str, recorder: Recorder
) -> None:
    async with proxied(pg_journal) as (proxy, via_proxy):
        client = await client_for(make_config(journal=via_proxy, journal_timeout="500ms"))
        await post_alerts(client, alert())
        await proxy.cut()
        body = payload(alert())
        for _ in range(2):  # a broken pooled connection, then no connection at all
            started = time.monotonic()
            resp = await client.post("/webhook", json=body, headers=AUTH)
            assert resp.status == 503, await resp.text()
            assert time.monotonic() - started < 2
        assert (await client.get("/healthz")).status == 503
        metrics = await (await client.get("/metrics")).text()
        assert 'pgwarden_responder_webhooks_total{code="503"} 2.0' in metrics
        await proxy.start()  # same port: the partition heals
        deadline = time.monotonic() + 30  # the pool reconnects with backoff
        while (resp := await client.post("/webhook", json=body, headers=AUTH)).status != 202:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        (d,) = (await resp.json())["decisions"]
        assert (await wait_done(client, d["id"]))["outcome"] == "succeeded"


async def test_dead_replica_work_is_interrupted_by_a_live_one(
    make_config: ConfigFactory, client_for: ClientFactory, pg_journal: str
) -> None:
    now = time.time()
    with psycopg.connect(pg_journal, autocommit=True) as conn:
        client = await client_for(make_config(journal=pg_journal, replica_timeout="1s"))  # creates the schema
        conn.execute(
            "INSERT INTO pgwarden_replicas (owner, seen_at) VALUES ('dead-replica', %s)", (now - 60,)
        )
        conn.execute(
            "INSERT INTO pgwarden_replicas (owner, seen_at) VALUES ('live-replica', %s)", (now + 3600,)
        )
        for owner, state in (
            ("dead-replica", "running"),
            ("live-replica", "running"),
            ("dead-replica", "queued"),
        ):
            conn.execute(
                "INSERT INTO pgwarden_actions (created_at, updated_at, owner, playbook, action, alertname,"
                " fingerprint, starts_at, alert_status, state, started_at) VALUES"
                " (%s, %s, %s, 'rec', 'record', 'TestAlert', 'fp', 'x', 'firing', %s, %s)",
                (now, now, owner, state, now),
            )
        deadline = time.monotonic() + 5
        while True:
            rows = conn.execute(
                "SELECT owner, state, outcome, error FROM pgwarden_actions ORDER BY id"
            ).fetchall()
            if rows[0][1] == "done" and rows[2][1] == "done":
                break
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.1)
    assert rows[0][2] == "interrupted" and "while this action was running" in rows[0][3]
    assert rows[1][1] == "running", "a live replica's action is left alone"
    assert rows[2][2] == "interrupted" and "before this action started" in rows[2][3]
    metrics = await (await client.get("/metrics")).text()
    assert 'outcome="interrupted",playbook="rec"} 2.0' in metrics


async def test_sqlite_group_commit_and_durability(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'j.db'}")
    assert isinstance(store, SqliteStore)
    journal = Journal(store, "me")
    await journal.start()
    decisions = [
        [
            Decision(
                AlertTrigger("A", f"f{i}", "t", "firing", {}),
                State.QUEUED,
                playbook="p",
                action="record",
                dedup_key=f"p|f{i % 50}|t",
            )
        ]
        for i in range(500)
    ]
    results = await asyncio.gather(*(journal.record(d) for d in decisions))
    outcomes = [r[0].outcome for r in results]
    assert outcomes.count(None) == 50 and outcomes.count("duplicate") == 450
    await journal.close()
    again = Journal(open_store(f"sqlite:///{tmp_path / 'j.db'}"), "me-again")
    await again.start()
    assert len(await again.recent(1000)) == 500
    await again.close()


async def test_restart_keeps_dedup_across_processes(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config()
    client = await client_for(config)
    a = alert(fingerprint="same")
    (first,) = await post_alerts(client, a)
    await wait_done(client, first["id"])
    await client.close()
    client = await client_for(config)
    (second,) = await post_alerts(client, a)
    assert second["outcome"] == "duplicate" and second["duplicate_of"] == first["id"]
    assert len(recorder.runs) == 1


# ---- exactly one answer, one clock, what counts, retention ----------------------------------------------------

_ROW = (
    "INSERT INTO pgwarden_actions (created_at, updated_at, owner, playbook, action, alertname, fingerprint,"
    " starts_at, alert_status, target_key, state, outcome, started_at, finished_at)"
    " VALUES (?, ?, ?, 'rec', 'record', 'TestAlert', ?, 'x', 'firing', 'pg:production', ?, ?, ?, ?)"
)


def _insert(url: str, *, owner: str = "other", state: str = "done", outcome: str | None = None,
            at: float, started: float | None = None, finished: float | None = None, fp: str = "fp") -> None:  # fmt: skip
    journal_sql(url, _ROW, (at, at, owner, fp, state, outcome, started, finished))


async def test_concurrent_approve_and_reject_exactly_one_wins(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    journal_url: str,
    recorder: Recorder,
    approvers: list[dict[str, str]],
) -> None:
    config = make_config(
        journal=journal_url,
        approvers=approvers,
        playbooks=[record_playbook(require_approval=True)],
    )
    client = await client_for(config)
    (d,) = await post_alerts(client, alert())
    postgres = not journal_url.startswith("sqlite:")
    # Hold the row (PostgreSQL) or the write lock (SQLite) so that both answers are in flight at once.
    holder: Any = (
        psycopg.connect(journal_url) if postgres else sqlite3.connect(journal_url[len("sqlite:///") :])
    )
    holder.execute(
        "SELECT id FROM pgwarden_actions WHERE id = %s FOR UPDATE" if postgres else "BEGIN IMMEDIATE",
        (d["id"],) if postgres else (),
    )
    try:
        answers = [
            asyncio.create_task(client.post(f"/actions/{d['id']}/{verb}", headers=APPROVE))
            for verb in ("approve", "reject")
        ]
        deadline = time.monotonic() + 10
        while (
            postgres
            and len(
                journal_sql(journal_url, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
            < 2
        ):
            assert time.monotonic() < deadline, "both answers wait for the row"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        holder.rollback()
        holder.close()
    approve, reject = [await task for task in answers]
    statuses = sorted([approve.status, reject.status])
    assert statuses in ([200, 409], [202, 409]), statuses
    loser = approve if approve.status == 409 else reject
    body = await loser.json()
    assert body["result"] == "not_pending" and body["state"] in ("queued", "running", "done"), body
    row = await wait_done(client, d["id"])
    assert row["outcome"] == ("succeeded" if approve.status == 202 else "rejected")
    assert len(recorder.runs) == (1 if approve.status == 202 else 0)


async def test_replica_liveness_is_judged_on_the_journal_clock(
    make_config: ConfigFactory, client_for: ClientFactory, pg_journal: str, monkeypatch: Any
) -> None:
    await (await client_for(make_config(journal=pg_journal))).close()  # creates the schema
    journal_sql(
        pg_journal,
        "INSERT INTO pgwarden_replicas (owner, seen_at) VALUES ('live', extract(epoch FROM now()))",
    )
    now = float(journal_sql(pg_journal, "SELECT extract(epoch FROM now())::float8")[0][0])
    _insert(pg_journal, owner="live", state="running", at=now, started=now)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # this replica's clock is an hour fast
    client = await client_for(make_config(journal=pg_journal, replica_timeout="30s"))  # start-up recovery ran
    ((state,),) = journal_sql(pg_journal, "SELECT state FROM pgwarden_actions WHERE owner = 'live'")
    assert state == "running", "a replica that beat a moment ago is alive, whatever this replica's clock says"
    assert client.app[keys.DISPATCHER].busy == 0


async def test_an_action_interrupted_after_it_started_counts_toward_the_daily_cap(
    make_config: ConfigFactory, client_for: ClientFactory, journal_url: str, recorder: Recorder
) -> None:
    config = make_config(
        journal=journal_url,
        playbooks=[
            {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "max_per_day": 1}
        ],
    )
    await (await client_for(config)).close()
    hour_ago = time.time() - 3600
    _insert(journal_url, outcome="interrupted", at=hour_ago, started=hour_ago, finished=hour_ago)  # mid-kill
    _insert(journal_url, outcome="interrupted", at=hour_ago, finished=hour_ago, fp="never-started")
    client = await client_for(config)
    (d,) = await post_alerts(client, alert())
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "cooldown" and "max_per_day: 1 actions" in row["error"], row
    assert recorder.runs == []


async def test_retention_deletes_old_finished_decisions_only(
    make_config: ConfigFactory, client_for: ClientFactory, journal_url: str
) -> None:
    journal = Journal(open_store(journal_url), "pruner")
    await journal.start()
    old, recent = time.time() - 100 * 86400, time.time() - 3600
    journal_sql(
        journal_url,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) "
        + _ROW.split(" VALUES ")[0]
        + " SELECT ?, ?, 'other', 'rec', 'record', 'TestAlert', 'fp' || i, 'x', 'firing', 'pg:production',"
        " 'done', 'succeeded', ?, ? FROM n",
        (old, old, old, old),
    )  # 1200 decisions that ended 100 days ago
    _insert(journal_url, outcome="succeeded", at=recent, started=recent, finished=recent)
    for state in ("pending", "queued", "running"):
        _insert(journal_url, state=state, at=old, started=old if state == "running" else None)
    assert await journal.prune(90 * 86400, batches=2) == (1000, True)  # small batches, a backlog left
    assert await journal.prune(90 * 86400) == (200, False)
    left = journal_sql(journal_url, "SELECT state FROM pgwarden_actions ORDER BY id")
    assert [s for (s,) in left] == ["done", "pending", "queued", "running"]
    _insert(journal_url, outcome="failed", at=old, started=old, finished=old)
    await journal.close()
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s"))  # housekeeping prunes

    async def rows() -> str:
        text = await (await client.get("/metrics")).text()
        return next(line for line in text.splitlines() if line.startswith("pgwarden_responder_journal_rows "))

    deadline = time.monotonic() + 20
    while (line := await rows()) != "pgwarden_responder_journal_rows 4.0":
        assert time.monotonic() < deadline, line
        await asyncio.sleep(0.1)
