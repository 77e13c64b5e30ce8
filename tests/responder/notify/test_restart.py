"""Nothing lost, nothing twice: a restart mid-queue (clean, or a replica dying with notices leased, or a
responder process killed) sends each notice once; two responders on one PostgreSQL journal send each once."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.pgserver import free_port
from responder import keys
from responder.app import make_app
from responder.journal import Journal, open_store
from responder.notify.outbox import router
from tests.responder.notify.conftest import FAST, HMAC_SECRET, AppFactory, notify_section
from tests.support.clock import frozen_clock
from tests.support.journal import journal_sql
from tests.support.receivers import WebhookReceiver
from tests.support.responder import AUTH, ConfigFactory, raw_config
from tests.support.responder_process import start_responder, wait_ready
from tests.support.webhook import alert, payload, post_alerts, wait_done


def sent_once(hook: WebhookReceiver, ids: list[int]) -> None:
    counts = collections.Counter(d["decision"]["id"] for d in hook.decisions())
    assert counts == dict.fromkeys(ids, 1), counts


async def test_a_restart_mid_queue_sends_each_notice_once(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver, journal_url: str
) -> None:
    config = make_config(journal=journal_url, notify=notify_section(receiver))
    await receiver.down("refused")
    first = await app_for(config)
    decided = await post_alerts(first, *(alert() for _ in range(6)))
    ids = sorted(d["id"] for d in decided)
    for d in decided:
        await wait_done(first, d["id"])
    await first.close()  # a clean stop: its leases are given back
    # ... and a replica that dies holding leases on some of them (as a process killed mid-send leaves them)
    dead = Journal(open_store(journal_url), "dead-replica", router(config.notify))
    await dead.start()
    await asyncio.sleep(FAST.backoff_cap + 0.5)  # every notice due again
    leased = await dead.claim_notices(lease=1.0, limit=3)
    await dead.store.close()  # no release: gone without a word
    assert len(leased) == 3
    await receiver.up()
    await app_for(config)
    await receiver.wait_for(6, within=15)
    await asyncio.sleep(0.5)
    sent_once(receiver, ids)
    owners = journal_sql(journal_url, "SELECT DISTINCT claimed_by, outcome FROM pgwarden_outbox")
    assert [o for _, o in owners] == ["sent"] and "dead-replica" not in {c for c, _ in owners}


async def test_two_responders_on_a_postgres_journal_send_each_notice_once(
    make_config: ConfigFactory, receiver: WebhookReceiver, pg_journal: str, aiohttp_client: Any
) -> None:
    receiver.delay = 0.02  # sends overlap between the replicas
    config = make_config(journal=pg_journal, notify=notify_section(receiver, rate_per_minute=1000))
    clients = []
    for _ in range(2):
        app = make_app(config, clock=frozen_clock)
        app[keys.NOTIFY_TUNING] = FAST
        clients.append(await aiohttp_client(app))
    posted = await asyncio.gather(*(post_alerts(clients[i % 2], alert()) for i in range(40)))
    ids = sorted(d["id"] for batch in posted for d in batch)
    await receiver.wait_for(40, within=30)
    await asyncio.sleep(0.5)
    sent_once(receiver, ids)
    rows = journal_sql(pg_journal, "SELECT claimed_by, outcome FROM pgwarden_outbox")
    assert len(rows) == 40 and {o for _, o in rows} == {"sent"}
    assert len({c for c, _ in rows}) == 2  # both replicas sent some: they raced for the same rows


async def test_a_responder_killed_mid_queue_loses_nothing(tmp_path: Path, receiver: WebhookReceiver) -> None:
    # The process knows only the real actions: its decisions here are alerts no playbook acts on (`unmatched`,
    # journaled and routed like any other outcome).
    other = {"name": "kill", "match": {"alertname": "Other"}, "action": "terminate_queries"}
    raw = raw_config(tmp_path, notify=notify_section(receiver), playbooks=[other])
    raw.pop("token")
    raw["token_env"] = "RESPONDER_TEST_TOKEN"
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(raw))
    log = tmp_path / "responder.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    await receiver.down("503")
    first = start_responder(path, port, log, {"AUDIT_HMAC": HMAC_SECRET})
    second: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            await wait_ready(session, base, first, log)
            async with session.post(f"{base}/webhook", json=payload(*(alert() for _ in range(5)))) as resp:
                assert resp.status == 202
                ids = sorted(d["id"] for d in (await resp.json())["decisions"])
            deadline = time.monotonic() + 20
            while receiver.attempts < 5:  # every notice tried (and refused) at least once
                assert time.monotonic() < deadline, log.read_bytes()
                await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)  # no cleanup, no goodbye
            first.wait(10)
            await receiver.up()
            second = start_responder(path, port, log, {"AUDIT_HMAC": HMAC_SECRET})
            await wait_ready(session, base, second, log)
            # a notice leased when the process died waits out its lease (a minute): allow for it
            await receiver.wait_for(5, within=90)
            await asyncio.sleep(1.5)
            sent_once(receiver, ids)
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
            assert 'pgwarden_notifications_total{outcome="sent",receiver="audit"} 5.0' in text
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
