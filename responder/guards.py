"""From an alert to decisions: which playbooks match, which target, and whether it may run now.

The guards that need shared state (exactly once, cooldown, daily cap, approval, expiry) are transactions in
the journal (`op_record`, `op_claim`, `op_decide`, `op_expire`), so they hold across replicas and restarts;
this module decides what to ask of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from responder.config import Config, Playbook
from responder.core import PostgresTarget, RdsTarget, TableTarget, Target, TargetKind
from responder.journal import NewDecision
from responder.models import Alert
from responder.outcomes import Outcome, State

# AWS's own rules for what these labels can be; anything else is not a target we act on.
RDS_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PG_NAME_MAX = 63
NO_TARGET_REASON = "no configured target matches the alert's labels"


@dataclass(frozen=True)
class Decision:
    """What the journal records (`record`), and the playbook and target it was decided for, to act on."""

    record: NewDecision
    playbook: Playbook | None = None
    target: Target | None = None


def resolve_target(playbook: Playbook, labels: Mapping[str, str], config: Config) -> Target | None:
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
        name = config.servers[0].name if len(config.servers) == 1 else None
    server = config.server(name) if name else None
    if server is None:
        return None
    datname = labels.get("datname") or None
    if datname is not None and len(datname) > PG_NAME_MAX:
        return None
    pg = PostgresTarget(server.name, server.conninfo, server.display, datname, server.credentials)
    if kind is TargetKind.POSTGRES:
        return pg
    relname = labels.get("relname", "")
    schemaname = labels.get("schemaname") or "public"
    if not datname or not relname or len(relname) > PG_NAME_MAX or len(schemaname) > PG_NAME_MAX:
        return None
    if "\x00" in relname + schemaname + datname:
        return None
    return TableTarget(pg, datname, schemaname, relname)


def dedup_key(playbook: Playbook, alert: Alert) -> str:
    return f"{playbook.name}|{alert.fingerprint}|{alert.startsAt}"


def _decision(
    alert: Alert,
    playbook: Playbook | None,
    state: State,
    outcome: Outcome | None = None,
    target: Target | None = None,
    **kw: str | None,
) -> Decision:
    record = NewDecision(
        alertname=alert.alertname,
        fingerprint=alert.fingerprint,
        starts_at=alert.startsAt,
        alert_status=alert.status,
        labels=dict(alert.labels),
        state=state,
        playbook=playbook.name if playbook else None,
        action=playbook.action if playbook else None,
        mode=playbook.mode if playbook else None,
        outcome=outcome,
        target=target.describe() if target else None,
        target_key=target.key if target else None,
        **kw,
    )
    return Decision(record, playbook, target)


def decide(alert: Alert, config: Config) -> list[Decision]:
    """One decision per matching playbook (or one `unmatched` record), before anything runs."""
    resolved = alert.status == "resolved"
    matched = [p for p in config.playbooks if p.match.matches(alert.labels)]
    if not matched:
        return [_decision(alert, None, State.DONE, Outcome.RESOLVED if resolved else Outcome.UNMATCHED)]
    out = []
    for p in matched:
        if resolved:
            out.append(_decision(alert, p, State.DONE, Outcome.RESOLVED))
            continue
        target = resolve_target(p, alert.labels, config)
        key = dedup_key(p, alert)
        if target is None:
            out.append(
                _decision(alert, p, State.DONE, Outcome.NO_TARGET, dedup_key=key, error=NO_TARGET_REASON)
            )
            continue
        state = State.PENDING if p.require_approval else State.QUEUED
        out.append(_decision(alert, p, state, target=target, dedup_key=key))
    return out
