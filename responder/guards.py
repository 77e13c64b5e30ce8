"""From an alert to decisions: which playbooks match, which target, and whether it may run now.

The guards that need shared state (exactly once, cooldown, daily cap, approval, expiry) are transactions in
the journal (`op_record`, `op_claim`, `op_decide`, `op_expire`), so they hold across replicas and restarts;
this module decides what to ask of them.
"""

from __future__ import annotations

import re

from responder.config import Config, Playbook
from responder.journal import NewDecision
from responder.models import Alert
from responder.playbooks.base import PostgresTarget, RdsTarget, TableTarget, Target, TargetKind

# AWS's own rules for what these labels can be; anything else is not a target we act on.
RDS_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PG_NAME_MAX = 63


def resolve_target(playbook: Playbook, labels: dict[str, str], config: Config) -> Target | None:
    """The target an alert's labels name for this playbook, or None (outcome `no_target`)."""
    kind = playbook.spec.target_kind
    if kind is TargetKind.RDS:
        identifier = labels.get("dbidentifier", "")
        region = labels.get("aws_region") or (config.aws.region if config.aws else "")
        if not RDS_IDENTIFIER.fullmatch(identifier) or not AWS_REGION.fullmatch(region):
            return None
        return RdsTarget(identifier, region)
    label = labels.get("target")
    if playbook.target is not None:
        if label and label != playbook.target:
            return None  # the alert is about another server than the one this playbook acts on
        name: str | None = playbook.target
    elif label:
        name = label
    else:
        name = config.targets[0].name if len(config.targets) == 1 else None
    server = config.target(name) if name else None
    if server is None:
        return None
    datname = labels.get("datname") or None
    if datname is not None and len(datname) > PG_NAME_MAX:
        return None
    pg = PostgresTarget(server.name, server.conninfo, server.display, datname)
    if kind is TargetKind.POSTGRES:
        return pg
    relname = labels.get("relname", "")
    schemaname = labels.get("schemaname") or "public"
    if not datname or not relname or len(relname) > PG_NAME_MAX or len(schemaname) > PG_NAME_MAX:
        return None
    if "\x00" in relname + schemaname + datname:
        return None
    return TableTarget(pg, datname, schemaname, relname)


def describe_target(target: Target) -> str:
    if isinstance(target, RdsTarget):
        return f"rds {target.region}/{target.identifier}"
    if isinstance(target, TableTarget):
        return f"{target.server.name} ({target.server.display}) {target.datname}.{target.schemaname}.{target.relname}"
    return f"{target.name} ({target.display})" + (f" database {target.datname}" if target.datname else "")


def dedup_key(playbook: Playbook, alert: Alert) -> str:
    return f"{playbook.name}|{alert.fingerprint}|{alert.startsAt}"


def _decision(alert: Alert, playbook: Playbook | None, state: str, **kw: str | None) -> NewDecision:
    return NewDecision(
        alertname=alert.alertname,
        fingerprint=alert.fingerprint,
        starts_at=alert.startsAt,
        alert_status=alert.status,
        labels=dict(alert.labels),
        state=state,
        playbook=playbook.name if playbook else None,
        action=playbook.action if playbook else None,
        mode=playbook.mode if playbook else None,
        **kw,
    )


def decide(alert: Alert, config: Config) -> list[NewDecision]:
    """One decision per matching playbook (or one `unmatched` record), before anything runs."""
    matched = [p for p in config.playbooks if p.match.matches(alert.labels)]
    if not matched:
        return [
            _decision(alert, None, "done", outcome="resolved" if alert.status == "resolved" else "unmatched")
        ]
    out = []
    for p in matched:
        if alert.status == "resolved":
            out.append(_decision(alert, p, "done", outcome="resolved"))
            continue
        target = resolve_target(p, alert.labels, config)
        key = dedup_key(p, alert)
        if target is None:
            out.append(
                _decision(
                    alert,
                    p,
                    "done",
                    outcome="no_target",
                    dedup_key=key,
                    error="no configured target matches the alert's labels",
                )
            )
            continue
        state = "pending" if p.require_approval else "queued"
        out.append(
            _decision(alert, p, state, target=describe_target(target), target_key=target.key, dedup_key=key)
        )
    return out
