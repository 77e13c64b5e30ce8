"""Responder configuration in the two stages of `pgwarden.config`.

Stage 1 (`ResponderSchema`, strict pydantic) checks shapes and types. Stage 2 (`resolve`) resolves secrets,
checks that names refer to something, validates each playbook's `params` with its action's own model, and
returns a frozen `Config` that keeps the schema and adds only what was resolved. Every error carries its key
path (`playbooks.3.params.max_class`), and all are reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import Errors, StrictModel, error_lines, load_yaml, validate_document
from pgwarden.dsn import DsnError, check_dsn, describe_dsn
from pgwarden.durations import Duration, format_duration
from pgwarden.secrets import SecretRef
from responder.aws import AwsConfig
from responder.core import ActionParams, ActionRegistry, ActionSpec, Repeat, TargetKind

Mode = Literal["dry-run", "enforce"]
NAME_RE = r"^[A-Za-z0-9_.:@-]+$"


class TargetSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: Path | None = None
    connect_timeout: Duration = 3.0

    @model_validator(mode="after")
    def _one_dsn_source(self) -> TargetSchema:
        SecretRef.of(self, "dsn").check_one()
        return self


class AwsSchema(StrictModel):
    region: str = Field(min_length=1)
    endpoint_url: str | None = None  # else AWS_ENDPOINT_URL, else AWS
    timeout: Duration = 20.0


class MatchSchema(StrictModel):
    alertname: str | list[str]
    labels: dict[str, str] = {}  # equality matchers
    labels_regex: dict[str, str] = {}  # full-match regular expressions

    @field_validator("labels_regex")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: invalid regular expression: {exc}") from exc
        return value


class PlaybookSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    match: MatchSchema
    action: str
    params: dict[str, Any] = {}
    target: str | None = None  # fixed configured target; else from the alert's labels
    mode: Mode | None = None
    cooldown: Duration = 0.0
    max_per_day: int | None = Field(default=None, ge=0)
    require_approval: bool | None = None
    timeout: Duration = 300.0
    # once: one decision per firing; while_firing: again in each cooldown window. Default: the action's.
    repeat: Repeat | None = None


class ResponderSchema(StrictModel):
    mode: Mode = "dry-run"
    auth: Literal["bearer", "none"] = "bearer"
    token: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    journal: str = "sqlite:///var/lib/pgwarden/journal.db"
    journal_dsn_env: str | None = None  # a PostgreSQL journal DSN from the environment instead
    journal_timeout: Duration = Field(default=2.0, gt=0)  # PostgreSQL journal: connect/acquire timeout
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    approval_timeout: Duration = 3600.0
    max_concurrent_actions: int = Field(default=4, ge=1, le=64)
    shutdown_timeout: Duration = 60.0
    # A replica silent this long is dead: its running actions are interrupted.
    replica_timeout: Duration = 30.0
    # Finished decisions older than this are deleted; at least a day (the daily cap and storage history).
    journal_retention: Duration = Field(default=90 * 86400.0, ge=86400.0)
    targets: list[TargetSchema] = []
    aws: AwsSchema | None = None
    playbooks: list[PlaybookSchema] = []


@dataclass(frozen=True)
class Server:
    """A configured PostgreSQL server (`targets:`), its DSN resolved."""

    name: str
    conninfo: str = field(repr=False)  # secret: never logged
    display: str  # host:port/dbname, safe to log
    connect_timeout: float


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
    """A playbook as configured (`schema`), with its action, typed params, match and effective mode."""

    schema: PlaybookSchema
    spec: ActionSpec[Any]
    params: ActionParams
    match: Match
    mode: Mode
    require_approval: bool
    repeat: Repeat  # effective: while_firing needs a cooldown, without one it is once

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def action(self) -> str:
        return self.spec.name

    @property
    def target(self) -> str | None:
        """The configured target it is fixed to, if any."""
        return self.schema.target


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

    @property
    def mode(self) -> Mode:
        return self.schema.mode

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    def playbook(self, name: str | None) -> Playbook | None:
        return next((p for p in self.playbooks if p.name == name), None)

    def journal_display(self) -> str:
        return self.journal if self.journal.startswith("sqlite:") else describe_dsn(self.journal)


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


def _journal(schema: ResponderSchema, errors: Errors) -> str:
    if schema.journal_dsn_env is not None:
        return errors.dsn(SecretRef("journal_dsn", env=schema.journal_dsn_env), "") or ""
    if not schema.journal.startswith("sqlite:"):
        try:
            check_dsn(schema.journal)
        except DsnError:
            errors.add("journal", "use sqlite:///path or a PostgreSQL URL (postgresql://...)")
    return schema.journal


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
        conninfo = errors.dsn(SecretRef.of(t, "dsn"), f"targets.{i}")
        if conninfo is not None:
            servers.append(Server(t.name, conninfo, describe_dsn(conninfo), t.connect_timeout))
    return tuple(servers)


def _playbook(
    where: str, p: PlaybookSchema, schema: ResponderSchema, registry: ActionRegistry, errors: Errors
) -> Playbook | None:
    spec = registry.get(p.action)
    if spec is None:
        errors.add(f"{where}.action", f"unknown action {p.action!r} (known: {', '.join(registry.names())})")
        return None
    params = _params(spec, p.params, where, errors)
    if params is None:
        return None
    if p.target is not None and p.target not in {t.name for t in schema.targets}:
        errors.add(f"{where}.target", f"unknown target {p.target!r}")
    if spec.target_kind in (TargetKind.POSTGRES, TargetKind.TABLE) and not schema.targets:
        errors.add(f"{where}.action", f"{p.action} needs at least one entry in targets:")
    if spec.target_kind is TargetKind.RDS and schema.aws is None:
        errors.add(f"{where}.action", f"{p.action} needs an aws: section")
    match = Match.of(p.match)
    if not match.alertnames or not all(match.alertnames):
        errors.add(f"{where}.match.alertname", "give at least one alert name")
    approval = spec.requires_approval_by_default if p.require_approval is None else p.require_approval
    if p.repeat == "while_firing" and p.cooldown <= 0:
        errors.add(f"{where}.repeat", "while_firing needs a cooldown (the window between two decisions)")
    repeat: Repeat = (p.repeat or spec.repeat_by_default) if p.cooldown > 0 else "once"
    return Playbook(p, spec, params, match, p.mode or schema.mode, approval, repeat)


def resolve(schema: ResponderSchema, registry: ActionRegistry) -> Config:
    """Stage 2: secrets, cross-references and params; a ConfigError lists every problem."""
    errors = Errors()
    token = _token(schema, errors)
    journal = _journal(schema, errors)
    servers = _servers(schema, errors)
    aws = None
    if schema.aws is not None:
        endpoint = schema.aws.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        aws = AwsConfig(schema.aws.region, endpoint, schema.aws.timeout)
    _no_duplicate_names("playbooks", "playbook", [p.name for p in schema.playbooks], errors)
    playbooks: list[Playbook] = []
    for i, p in enumerate(schema.playbooks):
        if (playbook := _playbook(f"playbooks.{i}", p, schema, registry, errors)) is not None:
            playbooks.append(playbook)
    errors.raise_if_any()
    return Config(schema, token, journal, servers, aws, tuple(playbooks), registry)


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
            extra.append("require_approval")
        lines.append(f"  - {p.name}: {'|'.join(p.match.alertnames)} -> {p.action} ({', '.join(extra)})")
    return "\n".join(lines)
