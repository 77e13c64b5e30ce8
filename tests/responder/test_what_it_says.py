"""What the responder says about itself is what was configured: the journal as written (`sqlite:///...`) in
/healthz and the "journal open" line, one form of `target=` on every decision line, and --check-config's
warnings about a configuration that loads but cannot do what it says."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from responder.cli import main
from responder.config import warnings
from responder.core import ActionRegistry
from tests.support.responder import AUTH, ClientFactory, ConfigFactory, config_file, record_playbook
from tests.support.webhook import alert, post_alerts, wait_done

HELD = record_playbook(name="held", match={"alertname": "Held"}, require_approval=True)


async def test_healthz_and_the_journal_open_line_show_the_journal_as_configured(
    make_config: ConfigFactory, client_for: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configured = f"sqlite:///{tmp_path / 'journal.db'}"
    caplog.set_level(logging.INFO, logger="responder")
    client = await client_for(make_config(journal=configured))
    assert (await (await client.get("/healthz")).json())["journal"] == configured
    (opened,) = [r for r in caplog.records if r.getMessage() == "journal open"]
    assert opened.__dict__["journal"] == configured


async def test_every_decision_line_names_its_target_as_actions_does(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    approvers: list[dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="responder")
    client = await client_for(make_config(playbooks=[record_playbook(), HELD], approvers=approvers))
    ran, held = await post_alerts(client, alert("TestAlert", datname="app"), alert("Held"))
    await wait_done(client, ran["id"])
    actions = {a["id"]: a for a in (await (await client.get("/actions", headers=AUTH)).json())["actions"]}
    lines = [r.__dict__ for r in caplog.records if r.getMessage() == "decision"]
    # a job that ran (succeeded) and a decision journaled pending: each line's target is the journal's
    assert {(line["action_id"], line["outcome"]) for line in lines} == {
        (ran["id"], "succeeded"),
        (held["id"], "pending"),
    }
    for line in lines:
        assert line["target"] == actions[line["action_id"]]["target"], line
    assert actions[ran["id"]]["target"] == "production (127.0.0.1:1/none) database app"


def test_check_config_warns_when_a_playbook_needs_an_approval_nobody_can_give(
    registry: ActionRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, playbooks=[record_playbook(), HELD])
    assert main(["--config", str(path), "--check-config"], registry) == 0
    out = capsys.readouterr().out
    assert (
        "warning: playbooks.1 (held) requires approval and nobody can approve (no approvers:): its actions"
        " wait as pending and expire after approval_timeout (1h)"
    ) in out.splitlines()
    assert "warning: no approvers: or viewers: nobody can sign in to the console (/ui)" in out.splitlines()
    assert "playbooks.0" not in out


def test_no_warning_when_someone_can_approve(
    make_config: ConfigFactory, approvers: list[dict[str, str]]
) -> None:
    assert warnings(make_config(playbooks=[HELD], approvers=approvers)) == []
    (only,) = warnings(make_config(playbooks=[HELD], viewers=[dict(approvers[0], name="vic")]))
    assert only.startswith("warning: playbooks.0 (held) requires approval and nobody can approve")
