"""Configuration: typos fail at load with their key path; --check-config; secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgwarden.durations import format_duration, parse_duration
from responder.cli import main
from responder.config import ConfigError, build_config, summary
from responder.playbooks import default_registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "responder.yml"


def _base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "auth": "none",
        "journal": "sqlite:///tmp/x.db",
        "targets": [{"name": "production", "dsn": "postgresql://u:s3cret@db.internal:5432/app"}],
        "aws": {"region": "us-east-1"},
        "playbooks": [],
    }
    raw.update(overrides)
    return raw


def _errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(raw, default_registry())
    return info.value.errors


@pytest.mark.parametrize(
    ("playbook", "path"),
    [
        ({"action": "terminate_queries", "params": {"min_duraton": "5m"}}, "playbooks.0.params.min_duraton"),
        (
            {"action": "terminate_queries", "params": {"min_duration": "5 minutes"}},
            "playbooks.0.params.min_duration",
        ),
        ({"action": "terminate_queries", "params": {"states": ["idle"]}}, "playbooks.0.params.states.0"),
        ({"action": "terminate_queries", "params": {"max_kills": 0}}, "playbooks.0.params.max_kills"),
        (
            {"action": "scale_instance", "params": {"ladder": ["a", "b"], "max_class": "c"}},
            "playbooks.0.params",
        ),
        (
            {"action": "scale_instance", "params": {"ladder": ["a"], "max_class": "a"}},
            "playbooks.0.params.ladder",
        ),
        (
            {"action": "grow_storage", "params": {"increase_percent": -5}},
            "playbooks.0.params.increase_percent",
        ),
        (
            {"action": "grow_storage", "params": {"max_allocated_gib": 100000}},
            "playbooks.0.params.max_allocated_gib",
        ),
        ({"action": "vacuum_analyze", "params": {"full": True}}, "playbooks.0.params.full"),
        ({"action": "terminate_querys"}, "playbooks.0.action"),
        ({"action": "vacuum_analyze", "cooldwn": "1m"}, "playbooks.0.cooldwn"),
        ({"action": "vacuum_analyze", "mode": "yolo"}, "playbooks.0.mode"),
        ({"action": "vacuum_analyze", "target": "staging"}, "playbooks.0.target"),
    ],
)
def test_playbook_typos_fail_at_load_with_key_path(playbook: dict[str, Any], path: str) -> None:
    raw = _base(playbooks=[{"name": "p", "match": {"alertname": "A"}, **playbook}])
    errors = _errors(raw)
    assert any(e.startswith(path) for e in errors), errors


def test_every_error_is_reported_at_once() -> None:
    raw = _base(
        mode="on",
        playbooks=[
            {"name": "a", "match": {"alertname": "A"}, "action": "terminate_queries", "params": {"x": 1}},
            {
                "name": "b",
                "match": {"alertname": "B"},
                "action": "grow_storage",
                "params": {"increase_percent": 0},
            },
        ],
    )
    raw.pop("auth")
    errors = _errors(raw)
    assert any(e.startswith("mode") for e in errors)
    raw["mode"] = "enforce"
    errors = _errors(raw)
    assert any(e.startswith("token_env") for e in errors)
    assert any(e.startswith("playbooks.0.params.x") for e in errors)
    assert any(e.startswith("playbooks.1.params.increase_percent") for e in errors)


def test_cross_references() -> None:
    errors = _errors(
        _base(
            aws=None,
            targets=[],
            playbooks=[
                {
                    "name": "s",
                    "match": {"alertname": "A"},
                    "action": "scale_instance",
                    "params": {"ladder": ["a", "b"], "max_class": "b"},
                },
                {"name": "k", "match": {"alertname": "A"}, "action": "terminate_queries"},
                {"name": "k", "match": {"alertname": "B"}, "action": "vacuum_analyze"},
            ],
        )
    )
    assert any("needs an aws: section" in e for e in errors)
    assert any("needs at least one entry in targets" in e for e in errors)
    assert any("duplicate playbook" in e for e in errors)


def test_secrets_from_env_and_files_never_in_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_DSN", "postgresql://u:topsecret@db.example:6543/prod")
    (tmp_path / "token").write_text("tok-secret\n")
    config = build_config(
        _base(
            auth="bearer",
            token_file=str(tmp_path / "token"),
            targets=[{"name": "production", "dsn_env": "T_DSN"}],
        ),
        default_registry(),
    )
    assert config.token == "tok-secret"
    text = summary(config)
    assert "db.example:6543/prod" in text
    assert "topsecret" not in text and "tok-secret" not in text
    errors = _errors(_base(targets=[{"name": "p", "dsn_env": "NOT_SET_ANYWHERE"}]))
    assert errors == ["targets.0.dsn_env: environment variable NOT_SET_ANYWHERE is not set or empty"]
    errors = _errors(_base(targets=[{"name": "p", "dsn": "x", "dsn_env": "Y"}]))
    assert errors[0].startswith("targets.0")


def test_aws_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    config = build_config(_base(), default_registry())
    assert config.aws is not None and config.aws.endpoint_url == "http://127.0.0.1:5000"


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h30m") == 5400
    assert format_duration(21600) == "6h"
    for bad in ("", "5", "5 m", "-1s", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_example_config_passes_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PGWARDEN_RESPONDER_TOKEN", "t")
    monkeypatch.setenv("PGWARDEN_APPROVER_TOKEN", "a")
    monkeypatch.setenv("PGPASSWORD", "pw-7c1f")  # libpq's own; the example's DSN leaves the password to it
    assert main(["--config", str(EXAMPLE), "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "scale-up-on-cpu" in out and "require_approval" in out
    assert "pw@" not in out and "pw-7c1f" not in out


def _check_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`responder --check-config` on the file in a fresh process, with only these variables besides the path."""
    return subprocess.run(
        [sys.executable, "-m", "responder", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


@pytest.mark.slow
def test_check_config_lists_every_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["playbooks"][0]["params"]["grace"] = "soon"
    raw["playbooks"][3]["params"]["max_class"] = "db.x1e.32xlarge"
    raw["unknown_key"] = 1
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(raw))
    result = _check_config(path)
    assert result.returncode != 0
    # shape errors and parameter errors, all in one run
    assert "unknown_key" in result.stderr
    assert "playbooks.0.params.grace" in result.stderr
    del raw["unknown_key"]
    path.write_text(yaml.safe_dump(raw))
    result = _check_config(path, PGWARDEN_RESPONDER_TOKEN="t", RESPONDER_DSN="postgresql://x@h/db")
    assert result.returncode != 0
    assert "playbooks.0.params.grace" in result.stderr
    assert "playbooks.3.params" in result.stderr and "max_class" in result.stderr


def test_a_dsn_without_dbname_is_described_as_libpq_would_connect() -> None:
    config = build_config(
        _base(targets=[{"name": "production", "dsn": "postgresql://app:s3cret@db.internal:6543"}]),
        default_registry(),
    )
    assert "production (db.internal:6543/app)" in summary(config)
    assert "s3cret" not in summary(config)


@pytest.mark.parametrize(
    ("source", "key"),
    [({"token": ""}, "token"), ({"token": " \t"}, "token"), ({"token_env": "BLANK_T"}, "token_env")],
)
def test_an_empty_token_is_a_config_error(
    source: dict[str, str], key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BLANK_T", "   ")
    errors = _errors(_base(auth="bearer", **source))
    assert [e.split(":")[0] for e in errors] == [key], errors
    (tmp_path / "tok").write_text("\n  \n")
    errors = _errors(_base(auth="bearer", token_file=str(tmp_path / "tok")))
    assert [e.split(":")[0] for e in errors] == ["token_file"], errors
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(_base(auth="bearer", **source)))
    assert main(["--config", str(path), "--check-config"]) != 0


def test_journal_dsn_from_env_is_validated_without_its_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("J_DSN", "host=db.internal user=responder password='s3cr3t-pw")  # unterminated quote
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(_base(journal_dsn_env="J_DSN")))
    assert main(["--config", str(path), "--check-config"]) != 0
    out = capsys.readouterr()
    assert "journal_dsn_env: the DSN does not parse" in out.err, out
    assert "s3cr3t" not in out.out + out.err
    monkeypatch.setenv("J_DSN", "postgresql://responder:s3cr3t-pw@db.internal:5432/journal")
    config = build_config(_base(journal_dsn_env="J_DSN"), default_registry())
    assert "journal: db.internal:5432/journal" in summary(config) and "s3cr3t" not in summary(config)


def test_repeat_defaults_per_action_and_needs_a_cooldown() -> None:
    def playbook(action: str, **extra: Any) -> dict[str, Any]:
        return {"name": f"p-{action}", "match": {"alertname": "A"}, "action": action, **extra}

    config = build_config(
        _base(
            playbooks=[
                playbook("terminate_queries", cooldown="5m"),
                playbook("vacuum_analyze", cooldown="1h"),
                playbook("grow_storage", cooldown="1h"),
                {**playbook("terminate_queries", cooldown="5m", repeat="once"), "name": "kill-once"},
                {**playbook("terminate_queries"), "name": "kill-no-cooldown"},
            ]
        ),
        default_registry(),
    )
    assert [p.repeat for p in config.playbooks] == ["while_firing", "while_firing", "once", "once", "once"]
    assert "repeat=while_firing" in summary(config)
    errors = _errors(_base(playbooks=[playbook("grow_storage", repeat="while_firing")]))
    assert errors == ["playbooks.0.repeat: while_firing needs a cooldown (the window between two decisions)"]
    assert any(
        e.startswith("playbooks.0.repeat")
        for e in _errors(_base(playbooks=[playbook("grow_storage", repeat="always")]))
    )


def test_journal_retention_keeps_at_least_a_day() -> None:
    assert build_config(_base(), default_registry()).schema.journal_retention == 90 * 86400
    assert any(e.startswith("journal_retention") for e in _errors(_base(journal_retention="12h")))
