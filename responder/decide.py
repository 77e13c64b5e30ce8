"""From an alert to decisions: which playbooks match, which target, and whether it may run now (or waits for an
approval); and the target a schedule's or an approved decision's labels name.

The guards that need shared state (exactly once, cooldown, daily cap, approval, expiry) are transactions in
the journal (`op_record`, `op_claim`, `op_decide`, `op_expire`), so they hold across replicas and restarts;
this module decides what to ask of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from responder.config import Config, Playbook
from responder.core import PostgresTarget, RdsTarget, TableTarget, Target, TargetKind
from responder.decision import AlertTrigger, Decision
from responder.journal.rows import ActionRow
from responder.models import MAX_LABEL_VALUE, MAX_LABELS, Alert
from responder.outcomes import Outcome, State

# AWS's own rules for what these labels can be; anything else is not a target we act on.
RDS_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PG_NAME_MAX = 63
NO_TARGET_REASON = "no configured target matches the alert's labels"
MAX_LABEL_NAME = 256
# What a rejected alert's journal row keeps of each of its texts.
REJECTED_TEXT_MAX = 256


def resolve_target(playbook: Playbook, labels: Mapping[str, str], config: Config) -> Target | None:
    """The target an alert's labels name for this playbook, or None (outcome `no_target`)."""
    kind = playbook.spec.target_kind
    if kind is TargetKind.RDS:
        identifier = labels.get("dbidentifier", "")
        region = labels.get("aws_region") or (config.aws.region if config.aws else "")
        if not RDS_IDENTIFIER.fullmatch(identifier) or not AWS_REGION.fullmatch(region):
            return None
        # RDS identifiers are case-insensitive (RDS stores them lower-case): one key for `Prod` and `prod`.
        return RdsTarget(identifier.lower(), region)
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


def params_digest(playbook: Playbook) -> str:
    """SHA-256 of a playbook's params as validated: journaled with each decision, compared when it is approved."""
    text = json.dumps(playbook.params.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changed_since_decided(row: ActionRow, playbook: Playbook, target: Target) -> str | None:
    """Why a journaled decision (approved, or revived) must not run as its playbook and target now stand (its
    mode, action or params, or the target its labels resolve to, changed since), or None. A row journaled
    before the params' digest was (schema version 5) has none to compare."""
    mode, action, described = playbook.mode, playbook.action, target.describe()
    if row.mode != mode:
        return f"the playbook's mode changed from {row.mode} to {mode} since this was decided: not run"
    if row.action != action:
        return f"the playbook's action changed from {row.action} to {action} since this was decided: not run"
    if row.target and row.target != described:
        return f"the target changed from {row.target} to {described} since this was decided: not run"
    if row.params_digest and row.params_digest != params_digest(playbook):
        return "the playbook's params changed since this was decided: not run"
    return None


def dedup_key(playbook: Playbook, alert: Alert, now: float) -> str:
    """`playbook|fingerprint|startsAt`; with `repeat: while_firing`, from the second cooldown window since
    startsAt on, `|n` with n the number of whole cooldown windows since then (on this replica's clock)."""
    key = f"{playbook.name}|{alert.fingerprint}|{alert.startsAt}"
    if playbook.repeat != "while_firing":
        return key
    started = datetime.fromisoformat(alert.startsAt.replace("Z", "+00:00")).timestamp()
    window = max(0, math.floor((now - started) / playbook.schema.cooldown))
    return f"{key}|{window}" if window else key


@dataclass(frozen=True)
class RejectedAlert:
    """An alert of an accepted payload that cannot be journaled as it is; journaled as `rejected`."""

    raw: Any
    reason: str


def _unsafe(text: str, limit: int, what: str) -> str | None:
    if len(text) > limit:
        return f"{what} longer than {limit} characters"
    if "\x00" in text:
        return f"{what} contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} is not valid UTF-8"
    return None


def alert_problem(alert: Alert) -> str | None:
    """Why this alert cannot be journaled and acted on (a NUL, invalid UTF-8, an oversized text), or None."""
    checks = [(alert.fingerprint, 128, "fingerprint"), (alert.startsAt, 64, "startsAt")]
    for name, value in alert.labels.items():
        checks.append((name, MAX_LABEL_NAME, "a label name"))
        checks.append((value, MAX_LABEL_VALUE, f"label {name[:MAX_LABEL_NAME]!r}"))
    for text, limit, what in checks:
        if (problem := _unsafe(text, limit, what)) is not None:
            return problem
    return None


def _safe(value: Any) -> str:
    """A bounded text that every journal can store, whatever the value was (NULs and lone surrogates escaped)."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:REJECTED_TEXT_MAX].replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def rejected_decision(bad: RejectedAlert) -> Decision:
    """The decision on a rejected alert: what can be read of it, made safe, and the reason."""
    raw = bad.raw if isinstance(bad.raw, dict) else {}
    given = raw.get("labels")
    labels: dict[Any, Any] = given if isinstance(given, dict) else {}
    trigger = AlertTrigger(
        alertname=_safe(labels.get("alertname", "")),
        fingerprint=_safe(raw.get("fingerprint", "")),
        starts_at=_safe(raw.get("startsAt", "")),
        status=_safe(raw.get("status", "")),
        labels={_safe(k): _safe(v) for k, v in list(labels.items())[:MAX_LABELS]},
    )
    return Decision(trigger, State.DONE, outcome=Outcome.REJECTED, error=_safe(bad.reason))


def _decision(
    trigger: AlertTrigger,
    playbook: Playbook | None,
    state: State,
    outcome: Outcome | None = None,
    target: Target | None = None,
    dedup_key: str | None = None,
    error: str | None = None,
) -> Decision:
    if playbook is None:
        return Decision(trigger, state, outcome=outcome)
    return Decision(
        trigger, state, playbook.name, playbook.action, playbook.mode, target, outcome, dedup_key, error,
        params_digest=params_digest(playbook),
    )  # fmt: skip


def decisions_for(alert: Alert, config: Config, now: float) -> list[Decision]:
    """One decision per matching playbook (or one `unmatched` one), before anything runs."""
    # The labels are shared by the decisions of one alert, never changed.
    trigger = AlertTrigger(alert.alertname, alert.fingerprint, alert.startsAt, alert.status, alert.labels)
    resolved = alert.status == "resolved"
    matched = [p for p in config.playbooks if p.match is not None and p.match.matches(alert.labels)]
    if not matched:
        return [_decision(trigger, None, State.DONE, Outcome.RESOLVED if resolved else Outcome.UNMATCHED)]
    out = []
    for p in matched:
        if resolved:
            out.append(_decision(trigger, p, State.DONE, Outcome.RESOLVED))
            continue
        target = resolve_target(p, alert.labels, config)
        key = dedup_key(p, alert, now)
        if target is None:
            out.append(
                _decision(trigger, p, State.DONE, Outcome.NO_TARGET, dedup_key=key, error=NO_TARGET_REASON)
            )
            continue
        state = State.PENDING if p.require_approval else State.QUEUED
        out.append(_decision(trigger, p, state, target=target, dedup_key=key))
    return out
