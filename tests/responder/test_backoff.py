"""The responder's retry policies (tenacity): what each retries, how far apart, when it gives up, and the log
lines and metric it leaves; against the real journals refusing writes and a real socket that refuses PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from responder.drills.checks import connect_checked
from responder.drills.models import ConnectSpec
from tests.support import responder as support
from tests.support.journal import ReadOnlyJournal
from tests.support.webhook import alert, payload, wait_done


def _records(caplog: pytest.LogCaptureFixture, message: str, **fields: Any) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == message and all(getattr(r, k, None) == v for k, v in fields.items())
    ]


async def _until(predicate: Callable[[], bool], what: str, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_claim_outcome_and_housekeeping_retry_then_give_up_or_recover(
    make_config: support.ConfigFactory,
    client_for: support.ClientFactory,
    journal_url: str,
    read_only: ReadOnlyJournal,
    recorder: support.Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(
        journal=journal_url,
        journal_timeout="1s",
        replica_timeout="1s",
        max_concurrent_actions=1,
        playbooks=[support.record_playbook(params={"sleep": "1s"})],
    )
    client = await client_for(config)
    busy, waiting = alert(), alert(fingerprint="waits-for-a-slot")
    resp = await client.post("/webhook", json=payload(busy, waiting), headers=support.AUTH)
    first, second = (int(d["id"]) for d in (await resp.json())["decisions"])
    await _until(lambda: bool(recorder.runs), "the first action started")

    async def journal_up() -> float:
        text = await (await client.get("/metrics")).text()
        (line,) = [x for x in text.splitlines() if x.startswith("pgwarden_responder_journal_up ")]
        return float(line.split()[1])

    with read_only.refusing():
        # The first outcome waits for the journal; the second decision's claim is tried four times.
        claims = "journal unavailable, action not started yet"
        await _until(lambda: len(_records(caplog, claims, action_id=second)) == 4, "four claim attempts")
        await _until(lambda: bool(_records(caplog, "journal unavailable")), "housekeeping backs off")
        assert await journal_up() == 0
    tried = _records(caplog, claims, action_id=second)
    assert [r.attempt for r in tried] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    gaps = [b.created - a.created for a, b in itertools.pairwise(tried)]
    assert all(gap >= least - 0.05 for gap, least in zip(gaps, (0.25, 0.5, 1.0), strict=True)), gaps
    deadline = time.monotonic() + 10
    while (await client.get("/actions", headers=support.AUTH)).status != 200:  # the pool reconnects first
        assert time.monotonic() < deadline, "the journal answers again"
        await asyncio.sleep(0.1)
    assert (await wait_done(client, second))["outcome"] == "interrupted"
    assert (await wait_done(client, first))["outcome"] == "succeeded"
    for action_id in (first, second):  # warned once while it waited, then said when it got through
        kept = _records(caplog, "journal unavailable, outcome kept until it is back", action_id=action_id)
        assert len(kept) == 1, kept
        (journaled,) = _records(caplog, "outcome journaled", action_id=action_id)
        assert journaled.attempts > 1  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while await journal_up() != 1:
        assert time.monotonic() < deadline, "housekeeping recovered"
        await asyncio.sleep(0.1)
    assert not _records(caplog, "cannot journal the outcome")


@pytest.fixture
def refusing_port() -> Iterator[tuple[int, list[float]]]:
    """A TCP port whose server accepts every connection and closes it at once (not PostgreSQL): the port, and
    when each connection came."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    came: list[float] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            came.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], came
    finally:
        server.close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("retries_for", "attempts"), [(0.0, 1), (2.5, 2), (3.5, 3)])
async def test_connect_checked_retries_within_its_window_then_raises(
    refusing_port: tuple[int, list[float]], retries_for: float, attempts: int
) -> None:
    """1 s, then 2 s apart, as long as the next attempt starts within `connect_retries_for`."""
    port, came = refusing_port
    spec = ConnectSpec(dsn_env="UNUSED", connect_timeout=1.0, connect_retries_for=retries_for)
    conninfo = f"host=127.0.0.1 port={port} user=u dbname=d sslmode=disable gssencmode=disable"
    with pytest.raises(psycopg.OperationalError):
        await connect_checked(conninfo, spec)
    assert len(came) == attempts, came
    gaps = [b - a for a, b in itertools.pairwise(came)]
    assert all(gap >= least - 0.05 for gap, least in zip(gaps, (1.0, 2.0), strict=False)), gaps
