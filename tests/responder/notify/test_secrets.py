"""A webhook's URL (its path is a secret, as Slack's and Teams' are) and its HMAC key never appear in a log line,
on stdout/stderr, in /actions, /metrics or the console, whatever happened to the notices: retried, given up,
sent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pgwarden.logs import StructuredFormatter
from tests.responder.notify.conftest import HMAC_SECRET, AppFactory, notify_section
from tests.responder.notify.test_delivery import notifications, until
from tests.responder.ui.console import ALICE, people, sign_in
from tests.support.receivers import WebhookReceiver
from tests.support.responder import AUTH, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done


async def test_a_webhooks_url_and_key_are_never_shown(
    make_config: ConfigFactory,
    app_for: AppFactory,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    section = notify_section(receiver)
    # a second receiver whose URL is wrong (a 404 behind the same secret path): given up, said in a log line
    wrong: dict[str, Any] = {"name": "broken", "webhook": {"url": receiver.url + "-gone"}}
    section["receivers"].append(wrong)
    section["routes"].append({"receiver": "broken"})
    config = make_config(notify=section, **people(monkeypatch, tmp_path))
    client = await app_for(config)
    await receiver.down("503")  # audit's notices retried; broken's path answers 404
    (decided,) = await post_alerts(client, alert())
    await wait_done(client, decided["id"])

    async def tried() -> bool:
        counted = await notifications(client)
        return counted.get(("audit", "failed"), 0) >= 2 and counted.get(("broken", "gave_up"), 0) == 1

    await until(tried)
    await receiver.up()
    await receiver.wait_for(1)

    shown = [
        await (await client.get("/actions", headers=AUTH)).text(),
        await (await client.get("/metrics")).text(),
    ]
    await sign_in(client, ALICE)
    shown += [await (await client.get(path)).text() for path in ("/ui", "/ui/approvals")]
    formatter = StructuredFormatter("json")
    shown += [formatter.format(r) for r in caplog.records]
    out = capsys.readouterr()
    shown += [out.out, out.err]
    everything = "\n".join(shown)
    assert "notification given up" in everything and "notification failed, will retry" in everything
    assert "pgwarden_notifications_total" in everything
    for secret in (receiver.secret_path, HMAC_SECRET, receiver.url):
        assert secret not in everything
