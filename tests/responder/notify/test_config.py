"""`notify:`: receivers and routes validated at load with their key paths; secrets read, never shown."""

from __future__ import annotations

from typing import Any

import pytest

from responder.config import ConfigError, build_config
from responder.playbooks import default_registry

SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.test/services/T0/B0/very-secret",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-1",
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
    "PD_ROUTING_KEY": "pd-routing-key-secret",
    "AUDIT_HMAC": "audit-hmac-secret",
    "TEAMS_WEBHOOK_URL": "https://teams.test/workflows/secret",
}

ISSUE_EXAMPLE: dict[str, Any] = {
    "receivers": [
        {
            "name": "oncall-slack",
            "slack": {"webhook_url_env": "SLACK_WEBHOOK_URL", "signing_secret_env": "SLACK_SIGNING_SECRET"},
        },
        {"name": "slack-bot", "slack": {"bot_token_env": "SLACK_BOT_TOKEN", "channel": "#db-oncall"}},
        {"name": "dba-teams", "teams": {"webhook_url_env": "TEAMS_WEBHOOK_URL"}},
        {"name": "pagerduty", "pagerduty": {"routing_key_env": "PD_ROUTING_KEY"}},
        {
            "name": "audit",
            "webhook": {"url": "https://audit.example.internal/pgwarden", "hmac_secret_env": "AUDIT_HMAC"},
        },
    ],
    "routes": [
        {
            "receiver": "oncall-slack",
            "outcomes": ["succeeded", "failed", "pending", "expired", "guardrail"],
            "playbooks": ["*"],
        },
        {"receiver": "audit", "outcomes": ["*"]},
        {"receiver": "pagerduty", "outcomes": ["succeeded"], "playbooks": ["grow-*"]},
    ],
    "public_url": "https://pgwarden.example.internal/",
}


def _raw(notify: dict[str, Any]) -> dict[str, Any]:
    return {"auth": "none", "journal": "sqlite:///tmp/x.db", "notify": notify}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def _errors(notify: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(_raw(notify), default_registry())
    return info.value.errors


@pytest.mark.usefixtures("secrets")
def test_the_issues_example_resolves_and_routes() -> None:
    notify = build_config(_raw(ISSUE_EXAMPLE), default_registry()).notify
    assert notify.public_url == "https://pgwarden.example.internal"
    slack = notify.receiver("oncall-slack")
    assert slack is not None and slack.url == SECRETS["SLACK_WEBHOOK_URL"] and not slack.updates_in_place
    bot = notify.receiver("slack-bot")
    assert bot is not None and bot.updates_in_place and bot.url == "https://slack.com/api/"
    assert notify.slack_signing_secrets == (SECRETS["SLACK_SIGNING_SECRET"],)
    names = [r.name for r in notify.receivers_for("failed", "cancel-long-query")]
    assert names == ["oncall-slack", "audit"]
    assert [r.name for r in notify.receivers_for("succeeded", "grow-storage")] == [
        "oncall-slack",
        "pagerduty",
        "audit",
    ]
    assert [r.name for r in notify.receivers_for("dry_run", "grow-storage")] == ["audit"]
    shown = repr(notify)
    assert not [name for name, value in SECRETS.items() if value in shown]


def test_no_notify_section_sends_nothing() -> None:
    notify = build_config(_raw({}), default_registry()).notify
    assert notify.receivers == () and notify.receivers_for("failed", "x") == ()


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        ({"receivers": [{"name": "a"}]}, "notify.receivers.0: give exactly one of slack"),
        (
            {"receivers": [{"name": "a", "slack": {"bot_token_env": "T"}}]},
            "notify.receivers.0.slack: a bot token needs a channel",
        ),
        (
            {"receivers": [{"name": "a", "webhook": {"url": "ftp://x"}}]},
            "notify.receivers.0.webhook.url",
        ),
        (
            {"receivers": [], "routes": [{"receiver": "nobody"}]},
            "route names receiver 'nobody', which is not in receivers",
        ),
        (
            {
                "receivers": [{"name": "a", "teams": {"webhook_url_env": "X"}}],
                "routes": [{"receiver": "a", "outcomes": ["succeded"]}],
            },
            "notify.routes.0.outcomes: unknown outcome 'succeded'",
        ),
        ({"receivers": [{"name": "a", "pagerduty": {}}]}, "notify.receivers.0.pagerduty"),
        ({"bogus": 1}, "notify.bogus"),
    ],
)
def test_mistakes_fail_at_load_naming_the_key(notify: dict[str, Any], expected: str) -> None:
    errors = _errors(notify)
    assert any(expected in line for line in errors), errors


def test_a_missing_secret_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
    errors = _errors({"receivers": [{"name": "p", "pagerduty": {"routing_key_env": "PD_ROUTING_KEY"}}]})
    assert any(line.startswith("notify.receivers.0.pagerduty.routing_key_env") for line in errors), errors


def test_one_slack_user_per_person(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_TOKEN", "a" * 32)
    monkeypatch.setenv("B_TOKEN", "b" * 32)
    raw = _raw({})
    raw["approvers"] = [
        {"name": "alice", "token_env": "A_TOKEN", "slack_user_id": "U012ABC"},
        {"name": "bob", "token_env": "B_TOKEN", "slack_user_id": "U012ABC"},
    ]
    with pytest.raises(ConfigError) as info:
        build_config(raw, default_registry())
    assert any("slack_user_id 'U012ABC' is given to more than one person" in e for e in info.value.errors)
    raw["approvers"][1]["slack_user_id"] = "U099XYZ"
    config = build_config(raw, default_registry())
    assert {p.name: p.slack_user_id for p in config.principals} == {"alice": "U012ABC", "bob": "U099XYZ"}
