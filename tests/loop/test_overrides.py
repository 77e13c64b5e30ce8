"""The demo overrides apply to copies of the real files and refuse what they cannot apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devtools.overrides import ALERTS, demo_alertmanager, demo_rules


def test_overrides_change_copies_not_the_real_rules(tmp_path: Path) -> None:
    before = (ALERTS / "postgres.rules.yml").read_text()
    files = demo_rules(tmp_path / "rules")
    assert (ALERTS / "postgres.rules.yml").read_text() == before
    rules = {
        r["alert"]: r
        for f in files
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert rules["PostgresLongRunningQuery"]["for"] == "0s"
    assert rules["PostgresLongRunningQuery"]["expr"].endswith("> 5")
    assert rules["PostgresDown"]["for"] == "1m"  # untouched


def test_an_override_for_a_missing_alert_or_expression_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "overrides.yml"
    bad.write_text(yaml.safe_dump({"rules": {"NoSuchAlert": {"for": "0s"}}, "alertmanager": {}}))
    with pytest.raises(ValueError, match="NoSuchAlert"):
        demo_rules(tmp_path / "out", bad)
    bad.write_text(yaml.safe_dump({"rules": {"PostgresDown": {"expr": {"> 12345": "> 1"}}}}))
    with pytest.raises(ValueError, match="12345"):
        demo_rules(tmp_path / "out2", bad)


def test_alertmanager_copy_points_at_the_responder(tmp_path: Path) -> None:
    out = demo_alertmanager(tmp_path / "am.yml", "http://127.0.0.1:1/webhook", tmp_path / "token")
    doc = yaml.safe_load(out.read_text())
    hooks = [h for r in doc["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks and all(h["url"] == "http://127.0.0.1:1/webhook" for h in hooks)
    responder_routes = [r for r in doc["route"]["routes"] if r["receiver"] == "pgwarden-responder"]
    assert responder_routes and all(r["group_wait"] == "1s" for r in responder_routes)
    # the loop tests prove the re-fire delivery with the intervals production runs
    real = yaml.safe_load((ALERTS / "alertmanager.yml").read_text())["route"]["routes"]
    for copy, route in zip(doc["route"]["routes"], real, strict=True):
        for key in ("group_interval", "repeat_interval"):
            assert copy.get(key) == route.get(key), key
