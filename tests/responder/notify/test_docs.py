"""docs/responder.md's notifications section: its `notify:` example loads as written, its Slack app manifest
asks for the scopes and the interactivity URL the transports and the interactions endpoint use."""

from __future__ import annotations

import re

import pytest
import yaml

from responder.config import build_config
from responder.notify.slack_blocks import APPROVE_ACTION
from responder.playbooks import default_registry
from tests.import_graph import ROOT

SECTION = (ROOT / "docs" / "responder.md").read_text().split("## Notifications and approvals from chat")[1]
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", SECTION.split("\n## ")[0], re.S)


def test_the_notify_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLACK_WEBHOOK_URL",
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "TEAMS_WEBHOOK_URL",
        "AUDIT_HMAC",
    ):
        monkeypatch.setenv(name, f"https://secret.example/{name.lower()}")
    monkeypatch.setenv("PD_ROUTING_KEY", "k" * 32)
    raw = yaml.safe_load(YAML_BLOCKS[0]) | {"auth": "none", "journal": "sqlite:///tmp/x.db"}
    notify = build_config(raw, default_registry()).notify
    assert [r.kind for r in notify.receivers] == ["slack", "slack", "teams", "pagerduty", "webhook"]
    bot = notify.receiver("oncall-bot")
    assert bot is not None and bot.updates_in_place and bot.channel == "#db-oncall"


def test_the_slack_manifest_names_the_scopes_and_the_interactions_url() -> None:
    manifest = yaml.safe_load(next(b for b in YAML_BLOCKS if "oauth_config" in b))
    assert "chat:write" in manifest["oauth_config"]["scopes"]["bot"]
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] and interactivity["request_url"].endswith(
        "/integrations/slack/interactions"
    )
    assert f"`{APPROVE_ACTION}`" in SECTION and "(images/slack-messages.png)" in SECTION
    assert (ROOT / "docs" / "images" / "slack-messages.png").stat().st_size > 20_000
