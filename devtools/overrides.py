"""Effective demo copies of the alert rules and the Alertmanager routing (alerts/demo/overrides.yml).

The real files keep the runbook's thresholds and `for:` durations; the demo and the closed-loop test need
seconds, so they run on copies with the overrides applied. An override naming an alert or a piece of an
expression that does not exist is an error: a renamed rule cannot silently escape the demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "alerts"
OVERRIDES = ALERTS / "demo" / "overrides.yml"


def demo_rules(out_dir: Path, overrides: Path = OVERRIDES) -> list[Path]:
    """Write every alerts/*.rules.yml with the overrides applied into `out_dir`; returns the files."""
    wanted: dict[str, dict[str, Any]] = dict(yaml.safe_load(overrides.read_text())["rules"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(ALERTS.glob("*.rules.yml")):
        doc = yaml.safe_load(source.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                change = wanted.get(rule.get("alert", ""))
                if change is None:
                    continue
                change.setdefault("_applied", True)
                if "for" in change:
                    rule["for"] = change["for"]
                for old, new in (change.get("expr") or {}).items():
                    if old not in rule["expr"]:
                        raise ValueError(f"{source.name}: {rule['alert']} has no {old!r} in its expression")
                    rule["expr"] = rule["expr"].replace(old, new)
        target = out_dir / source.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    missing = sorted(name for name, change in wanted.items() if "_applied" not in change)
    if missing:
        raise ValueError(f"overrides name alerts that no rule file has: {', '.join(missing)}")
    return written


def demo_alertmanager(out: Path, responder_url: str, token_file: Path, overrides: Path = OVERRIDES) -> Path:
    """alerts/alertmanager.yml with the responder's address and token file, and the demo's group timings."""
    timing = yaml.safe_load(overrides.read_text())["alertmanager"]
    doc = yaml.safe_load((ALERTS / "alertmanager.yml").read_text())
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = responder_url
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    for route in doc["route"].get("routes", []):
        if route.get("receiver") == "pgwarden-responder":
            route.update(timing)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out
