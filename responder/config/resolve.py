"""Stage 2 of the responder's configuration (`pgwarden.config`'s two stages; stage 1 is `responder.config.schema`).

Stage 1 (`ResponderSchema`, strict pydantic) checks shapes and types. Stage 2 (`resolve`) resolves secrets,
checks that names refer to something, validates each playbook's `params` with its action's own model, and
returns a frozen `Config` that keeps the schema and adds only what was resolved. Every error carries its key
path (`playbooks.3.params.max_class`), and all are reported at once.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import Errors, error_lines, load_yaml, validate_document
from pgwarden.credentials import (
    Credentials,
    DsnSecret,
    resolve_credentials,
    resolve_server,
)
from pgwarden.dsn import DsnError, check_dsn, describe_dsn
from pgwarden.durations import format_duration
from pgwarden.secrets import SecretRef
from responder.aws import AwsConfig
from responder.config.approvals import approvals_needed
from responder.config.schema import MatchSchema, Mode, PlaybookSchema, ResponderSchema, ScheduleSchema
from responder.core import ActionParams, ActionRegistry, ActionSpec, RdsTarget, Repeat, TargetKind
from responder.notify.config import NotifySettings, resolve_notify
from responder.principals import Principal, resolve_principals
from responder.scheduling.cron import last_at_or_before, next_after


@dataclass(frozen=True)
class Server:
    """A configured PostgreSQL server (`targets:`), its DSN resolved."""

    name: str
    conninfo: str = field(repr=False)  # secret: never logged
    display: str  # host:port/dbname, safe to log
    connect_timeout: float
    credentials: Credentials | None = field(default=None, compare=False, repr=False)
    rds: RdsTarget | None = None  # its RDS instance, when `rds:` names it


@dataclass(frozen=True)
class Match:
    alertnames: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    labels_regex: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def of(cls, schema: MatchSchema) -> Match:
        names = schema.alertname
        return cls(
            (names,) if isinstance(names, str) else tuple(names),
            tuple(schema.labels.items()),
            tuple((k, re.compile(v)) for k, v in schema.labels_regex.items()),
        )

    def matches(self, labels: Mapping[str, str]) -> bool:
        if labels.get("alertname") not in self.alertnames:
            return False
        if any(labels.get(k) != v for k, v in self.labels):
            return False
        return all(rx.fullmatch(labels.get(k, "")) for k, rx in self.labels_regex)


@dataclass(frozen=True)
class Playbook:
    """A playbook as configured (`schema`), with its action, typed params, match and effective mode. A
    schedule's playbook (its `schema` the schedule's) matches no alert (`match` is None)."""

    schema: PlaybookSchema | ScheduleSchema
    spec: ActionSpec[Any]
    params: ActionParams
    match: Match | None
    mode: Mode
    require_approval: bool
    repeat: Repeat  # effective: while_firing needs a cooldown, without one it is once
    approvals: int = 1  # different approvers needed (the two-person rule: 2), when it requires approval

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def action(self) -> str:
        return self.spec.name

    @property
    def target(self) -> str | None:
        """The configured target it is fixed to, if any."""
        return self.schema.target if isinstance(self.schema, PlaybookSchema) else None


@dataclass(frozen=True)
class Schedule:
    """A schedule: its playbook (named after it: the same guards as an alert's) and its target as labels."""

    schema: ScheduleSchema
    playbook: Playbook
    labels: dict[str, str]  # what the target is resolved from (responder.decide), as an alert's would be

    @property
    def name(self) -> str:
        return self.schema.name

    def next_after(self, moment: datetime) -> datetime:
        return next_after(self.schema.cron, moment)

    def last_at_or_before(self, moment: datetime) -> datetime:
        return last_at_or_before(self.schema.cron, moment)


@dataclass(frozen=True)
class Config:
    """The configuration as loaded (`schema`) plus what stage 2 resolved from it."""

    schema: ResponderSchema
    token: str | None  # None only with auth: none
    journal: str
    servers: tuple[Server, ...]
    aws: AwsConfig | None
    playbooks: tuple[Playbook, ...]
    actions: ActionRegistry = field(compare=False)  # every known action, configured or not
    schedules: tuple[Schedule, ...] = ()
    principals: tuple[Principal, ...] = ()  # approvers and viewers
    journal_credentials: Credentials | None = field(default=None, compare=False, repr=False)
    notify: NotifySettings = field(default_factory=NotifySettings)

    def principal(self, token: str) -> Principal | None:
        """Whose token this is (constant-time comparisons against every one); the webhook's is nobody's."""
        found = None
        for p in self.principals:
            if hmac.compare_digest(token.encode(), p.token.encode()):
                found = p
        return found

    @property
    def mode(self) -> Mode:
        return self.schema.mode

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    @property
    def all_playbooks(self) -> tuple[Playbook, ...]:
        """The playbooks, then the schedules' playbooks."""
        return (*self.playbooks, *(s.playbook for s in self.schedules))

    def playbook(self, name: str | None) -> Playbook | None:
        """A playbook, or a schedule's playbook, by name."""
        return next((p for p in self.all_playbooks if p.name == name), None)

    def journal_display(self) -> str:
        return self.journal if self.journal.startswith("sqlite:") else describe_dsn(self.journal)


# What a scheduled TABLE action gets when its target names no table: the action selects tables itself
# (vacuum_analyze with `tables: stale_analyze`).
ANY_TABLE = "*"


def target_labels(kind: TargetKind, given: dict[str, str]) -> dict[str, str]:
    """A schedule's target as alert labels; a TABLE target without a table selects any (`*`)."""
    labels = dict(given)
    if kind is TargetKind.TABLE:
        labels.setdefault("schemaname", ANY_TABLE)
        labels.setdefault("relname", ANY_TABLE)
    return labels


def _params(spec: ActionSpec[Any], params: Any, where: str, errors: Errors) -> ActionParams | None:
    """The playbook's params as its action's model, or None with every error under `<where>.params`."""
    try:
        validated: ActionParams = spec.params_model.model_validate(params)
    except ValidationError as exc:
        errors.extend(error_lines(exc, f"{where}.params"))
        return None
    return validated


def _readable_params_errors(raw: dict[str, Any], registry: ActionRegistry) -> list[str]:
    """When stage 1 fails: the errors in the params that can still be read, so one run lists them all."""
    errors = Errors()
    playbooks = raw.get("playbooks")
    for i, p in enumerate(playbooks if isinstance(playbooks, list) else []):
        if not isinstance(p, dict) or not isinstance(p.get("action"), str):
            continue
        spec = registry.get(p["action"])
        if spec is not None and isinstance(p.get("params", {}), dict):
            _params(spec, p.get("params", {}), f"playbooks.{i}", errors)
    return errors.lines


def _token(schema: ResponderSchema, errors: Errors) -> str | None:
    ref = SecretRef.of(schema, "token")
    if schema.auth == "none":
        if ref.given:
            errors.add("auth", f"'none' conflicts with {ref.sources()[0]}")
        return None
    if len(ref.sources()) != 1:
        errors.add("token_env", "give exactly one of token_env, token_file or token (or write `auth: none`)")
        return None
    return errors.secret(ref, "")


def _journal(schema: ResponderSchema, errors: Errors) -> tuple[str, Credentials | None]:
    if schema.journal_dsn_secret is not None:
        return _journal_secret(schema, schema.journal_dsn_secret, errors)
    if schema.journal_dsn_env is not None:
        return errors.dsn(SecretRef("journal_dsn", env=schema.journal_dsn_env), "") or "", None
    if not schema.journal.startswith("sqlite:"):
        try:
            check_dsn(schema.journal)
        except DsnError:
            errors.add("journal", "use sqlite:///path or a PostgreSQL URL (postgresql://...)")
    return schema.journal, None


def _journal_secret(
    schema: ResponderSchema, secret: DsnSecret, errors: Errors
) -> tuple[str, Credentials | None]:
    """A PostgreSQL journal from Secrets Manager; `journal:`, when a URL, supplies what the secret lacks."""
    base = ""
    if schema.journal_dsn_env is not None:
        errors.add("journal_dsn_secret", "conflicts with journal_dsn_env")
    elif "journal" in schema.model_fields_set and schema.journal.startswith("sqlite:"):
        errors.add("journal_dsn_secret", "conflicts with a sqlite: journal")
    elif not schema.journal.startswith("sqlite:"):
        base = schema.journal
    resolved = resolve_credentials(base, secret, False, "", errors, secret_key="journal_dsn_secret")
    return resolved if resolved is not None else ("", None)


def _no_duplicate_names(section: str, what: str, names: list[str], errors: Errors) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            errors.add(f"{section}.{i}.name", f"duplicate {what} {name!r}")
        seen.add(name)


def _servers(schema: ResponderSchema, errors: Errors) -> tuple[Server, ...]:
    _no_duplicate_names("targets", "target", [t.name for t in schema.targets], errors)
    servers: list[Server] = []
    for i, t in enumerate(schema.targets):
        server = resolve_server(t, f"targets.{i}", errors)
        if server is not None:
            conninfo, credentials = server
            rds = RdsTarget(t.rds.identifier, t.rds.region) if t.rds is not None else None
            display = describe_dsn(conninfo)
            servers.append(Server(t.name, conninfo, display, t.connect_timeout, credentials, rds))
    return tuple(servers)


def _playbook(
    where: str,
    p: PlaybookSchema | ScheduleSchema,
    schema: ResponderSchema,
    registry: ActionRegistry,
    errors: Errors,
) -> Playbook | None:
    """A playbook's (or a schedule's) action, params, approval and repeat; an alert playbook's match and fixed
    target too."""
    spec = registry.get(p.action)
    if spec is None:
        errors.add(f"{where}.action", f"unknown action {p.action!r} (known: {', '.join(registry.names())})")
        return None
    params = _params(spec, p.params, where, errors)
    if params is None:
        return None
    match, repeat_given = None, None
    if isinstance(p, PlaybookSchema):
        if p.target is not None and p.target not in {t.name for t in schema.targets}:
            errors.add(f"{where}.target", f"unknown target {p.target!r}")
        match = Match.of(p.match)
        if not match.alertnames or not all(match.alertnames):
            errors.add(f"{where}.match.alertname", "give at least one alert name")
        if p.repeat == "while_firing" and p.cooldown <= 0:
            errors.add(f"{where}.repeat", "while_firing needs a cooldown (the window between two decisions)")
        repeat_given = p.repeat
    if spec.target_kind in (TargetKind.POSTGRES, TargetKind.TABLE) and not schema.targets:
        errors.add(f"{where}.action", f"{p.action} needs at least one entry in targets:")
    if spec.target_kind is TargetKind.RDS and schema.aws is None:
        errors.add(f"{where}.action", f"{p.action} needs an aws: section")
    approval, approvals = approvals_needed(where, p.require_approval, spec, len(schema.approvers), errors)
    repeat: Repeat = (repeat_given or spec.repeat_by_default) if p.cooldown > 0 else "once"
    return Playbook(p, spec, params, match, p.mode or schema.mode, approval, repeat, approvals)


def _schedule(
    where: str, s: ScheduleSchema, schema: ResponderSchema, registry: ActionRegistry, errors: Errors
) -> Schedule | None:
    playbook = _playbook(where, s, schema, registry, errors)
    if playbook is None:
        return None
    labels = target_labels(playbook.spec.target_kind, s.target)
    names = [t.name for t in schema.targets]
    if playbook.spec.target_kind is TargetKind.RDS:
        if not labels.get("dbidentifier"):
            errors.add(f"{where}.target", "give dbidentifier (and aws_region, default aws.region)")
    elif labels.get("target", names[0] if len(names) == 1 else None) not in names:
        errors.add(f"{where}.target", f"target: must name one of the configured targets {names}")
    elif playbook.spec.target_kind is TargetKind.TABLE and not labels.get("datname"):
        errors.add(f"{where}.target", "give datname")
    return Schedule(s, playbook, labels)


def resolve(schema: ResponderSchema, registry: ActionRegistry) -> Config:
    """Stage 2: secrets, cross-references and params; a ConfigError lists every problem."""
    errors = Errors()
    token = _token(schema, errors)
    journal, journal_credentials = _journal(schema, errors)
    servers = _servers(schema, errors)
    principals = resolve_principals(schema.approvers, schema.viewers, token, errors)
    aws = None
    if schema.aws is not None:
        endpoint = schema.aws.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        aws = AwsConfig(schema.aws.region, endpoint, schema.aws.timeout)
    _no_duplicate_names("playbooks", "playbook", [p.name for p in schema.playbooks], errors)
    playbooks: list[Playbook] = []
    for i, p in enumerate(schema.playbooks):
        if (playbook := _playbook(f"playbooks.{i}", p, schema, registry, errors)) is not None:
            playbooks.append(playbook)
    _no_duplicate_names("schedules", "schedule", [s.name for s in schema.schedules], errors)
    taken = {p.name for p in schema.playbooks}
    schedules: list[Schedule] = []
    for i, s in enumerate(schema.schedules):
        if s.name in taken:
            errors.add(f"schedules.{i}.name", f"{s.name!r} is a playbook's name (they share the journal's)")
        if (schedule := _schedule(f"schedules.{i}", s, schema, registry, errors)) is not None:
            schedules.append(schedule)
    notify = resolve_notify(schema.notify, errors)
    errors.raise_if_any()
    return Config(
        schema,
        token,
        journal,
        servers,
        aws,
        tuple(playbooks),
        registry,
        tuple(schedules),
        principals,
        journal_credentials,
        notify,
    )


def build_config(raw: Any, registry: ActionRegistry) -> Config:
    """A parsed YAML document, validated (stage 1) and resolved (stage 2); raises ConfigError."""
    schema = validate_document(ResponderSchema, raw, lambda data: _readable_params_errors(data, registry))
    return resolve(schema, registry)


def load_config(path: Path, registry: ActionRegistry) -> Config:
    return build_config(load_yaml(path), registry)


def summary(config: Config) -> str:
    """What --check-config prints: no secret, servers as host:port/dbname."""
    aws = config.aws
    lines = [
        f"mode: {config.mode}",
        f"auth: {'bearer token' if config.token else 'none'}",
        f"approvers: {', '.join(p.name for p in config.principals if p.can_approve) or '-'}",
        f"viewers: {', '.join(p.name for p in config.principals if not p.can_approve) or '-'}",
        f"journal: {config.journal_display()}",
        f"targets: {', '.join(f'{s.name} ({s.display})' for s in config.servers) or '-'}",
        f"aws: {(aws.region + (f' via {aws.endpoint_url}' if aws.endpoint_url else '')) if aws else '-'}",
        f"playbooks: {len(config.playbooks)}",
    ]
    for p in config.playbooks:
        extra = [f"mode={p.mode}", f"cooldown={format_duration(p.schema.cooldown)}", f"repeat={p.repeat}"]
        if p.schema.max_per_day is not None:
            extra.append(f"max_per_day={p.schema.max_per_day}")
        if p.require_approval:
            extra.append("require_approval" + (f"={p.approvals}" if p.approvals > 1 else ""))
        alertnames = p.match.alertnames if p.match is not None else ()
        lines.append(f"  - {p.name}: {'|'.join(alertnames)} -> {p.action} ({', '.join(extra)})")
    lines.append(f"schedules: {len(config.schedules)}")
    for s in config.schedules:
        lines.append(
            f"  - {s.name}: {s.schema.cron} -> {s.playbook.action} on {s.labels} (mode={s.playbook.mode})"
        )
    return "\n".join(lines)
