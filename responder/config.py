"""Responder configuration: strict models, then cross-references and every playbook's typed params.

Stage 1 (`_Schema`, pydantic, extra="forbid") checks shapes and types; stage 2 (`build_config`) resolves
secrets, checks that names refer to something, validates each playbook's `params` against its action's model
from the registry, and returns a frozen `Config`. Every error carries its key path, and all are reported at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, ValidationError, field_validator, model_validator

from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import StrictModel, error_lines, load_yaml
from pgwarden.durations import Duration, format_duration
from responder.playbooks.base import ActionParams, ActionRegistry, ActionSpec, TargetKind

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
        given = [k for k in ("dsn", "dsn_env", "dsn_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dsn, dsn_env or dsn_file")
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


class _Schema(StrictModel):
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
    replica_timeout: Duration = (
        30.0  # a replica silent this long is dead: its running actions are interrupted
    )
    targets: list[TargetSchema] = []
    aws: AwsSchema | None = None
    playbooks: list[PlaybookSchema] = []


@dataclass(frozen=True)
class Target:
    name: str
    conninfo: str
    display: str  # host:port/dbname, safe to log
    connect_timeout: float


@dataclass(frozen=True)
class AwsConfig:
    region: str
    endpoint_url: str | None
    timeout: float


@dataclass(frozen=True)
class Match:
    alertnames: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    labels_regex: tuple[tuple[str, re.Pattern[str]], ...]

    def matches(self, labels: dict[str, str]) -> bool:
        if labels.get("alertname") not in self.alertnames:
            return False
        if any(labels.get(k) != v for k, v in self.labels):
            return False
        return all(rx.fullmatch(labels.get(k, "")) for k, rx in self.labels_regex)


@dataclass(frozen=True)
class Playbook:
    name: str
    match: Match
    spec: ActionSpec
    params: ActionParams
    target: str | None
    mode: Mode
    cooldown: float
    max_per_day: int | None
    require_approval: bool
    timeout: float

    @property
    def action(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Config:
    mode: Mode
    token: str | None = None  # None only with auth: none
    journal: str = ""
    journal_timeout: float = 2.0
    max_body_bytes: int = 1024 * 1024
    approval_timeout: float = 3600.0
    max_concurrent_actions: int = 4
    shutdown_timeout: float = 60.0
    replica_timeout: float = 30.0
    targets: tuple[Target, ...] = ()
    aws: AwsConfig | None = None
    playbooks: tuple[Playbook, ...] = ()

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def journal_display(self) -> str:
        return display_dsn(self.journal) if not self.journal.startswith("sqlite:") else self.journal


def display_dsn(dsn: str) -> str:
    """host:port/dbname, never the password or user."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable dsn>"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def _secret(
    value: str | None, env: str | None, file: Path | None, key: str, env_key: str, errors: list[str]
) -> str | None:
    if value is not None:
        return value
    if env is not None:
        got = os.environ.get(env)
        if not got:
            errors.append(f"{env_key}: environment variable {env} is not set")
        return got or None
    if file is not None:
        try:
            text = file.read_text().strip()
        except OSError as exc:
            errors.append(f"{key}_file: cannot read {file}: {exc.strerror}")
            return None
        if not text:
            errors.append(f"{key}_file: {file} is empty")
        return text or None
    return None


def _params_errors(raw: dict[str, Any], registry: ActionRegistry) -> list[str]:
    """Parameter errors of the playbooks that can be read, so that one run lists every error at once."""
    errors: list[str] = []
    playbooks = raw.get("playbooks")
    if not isinstance(playbooks, list):
        return errors
    for i, p in enumerate(playbooks):
        if not isinstance(p, dict) or not isinstance(p.get("action"), str):
            continue
        spec = registry.get(p["action"])
        params = p.get("params", {})
        if spec is None or not isinstance(params, dict):
            continue
        try:
            spec.params_model.model_validate(params)
        except ValidationError as exc:
            errors.extend(error_lines(exc, f"playbooks.{i}.params"))
    return errors


def build_config(raw: Any, registry: ActionRegistry) -> Config:
    """Validate a parsed YAML document; raises ConfigError with every problem found."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: the configuration must be a mapping"])
    try:
        schema = _Schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc) + _params_errors(raw, registry)) from None
    errors: list[str] = []

    token = None
    given = [k for k in ("token", "token_env", "token_file") if getattr(schema, k) is not None]
    if schema.auth == "none":
        if given:
            errors.append(f"auth: 'none' conflicts with {given[0]}")
    elif len(given) != 1:
        errors.append("token_env: give exactly one of token_env, token_file or token (or write `auth: none`)")
    else:
        token = _secret(schema.token, schema.token_env, schema.token_file, "token", "token_env", errors)

    journal = schema.journal
    if schema.journal_dsn_env is not None:
        journal = os.environ.get(schema.journal_dsn_env, "")
        if not journal:
            errors.append(f"journal_dsn_env: environment variable {schema.journal_dsn_env} is not set")
    elif not journal.startswith("sqlite:"):
        try:
            conninfo_to_dict(journal)
        except Exception:
            errors.append("journal: use sqlite:///path or a PostgreSQL URL (postgresql://...)")

    targets: list[Target] = []
    seen: set[str] = set()
    for i, t in enumerate(schema.targets):
        if t.name in seen:
            errors.append(f"targets.{i}.name: duplicate target {t.name!r}")
        seen.add(t.name)
        dsn = _secret(t.dsn, t.dsn_env, t.dsn_file, f"targets.{i}.dsn", f"targets.{i}.dsn_env", errors)
        if dsn is not None:
            try:
                conninfo_to_dict(dsn)
            except Exception:
                errors.append(f"targets.{i}.dsn: not a valid PostgreSQL connection string")
                continue
            targets.append(Target(t.name, dsn, display_dsn(dsn), t.connect_timeout))

    aws = None
    if schema.aws is not None:
        endpoint = schema.aws.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        aws = AwsConfig(schema.aws.region, endpoint, schema.aws.timeout)

    playbooks: list[Playbook] = []
    names: set[str] = set()
    for i, p in enumerate(schema.playbooks):
        where = f"playbooks.{i}"
        if p.name in names:
            errors.append(f"{where}.name: duplicate playbook {p.name!r}")
        names.add(p.name)
        spec = registry.get(p.action)
        if spec is None:
            errors.append(
                f"{where}.action: unknown action {p.action!r} (known: {', '.join(registry.names())})"
            )
            continue
        try:
            params = spec.params_model.model_validate(p.params)
        except ValidationError as exc:
            errors.extend(error_lines(exc, f"{where}.params"))
            continue
        if p.target is not None and p.target not in seen:
            errors.append(f"{where}.target: unknown target {p.target!r}")
        if spec.target_kind in (TargetKind.POSTGRES, TargetKind.TABLE) and not schema.targets:
            errors.append(f"{where}.action: {p.action} needs at least one entry in targets:")
        if spec.target_kind is TargetKind.RDS and schema.aws is None:
            errors.append(f"{where}.action: {p.action} needs an aws: section")
        alertnames = (p.match.alertname,) if isinstance(p.match.alertname, str) else tuple(p.match.alertname)
        if not alertnames or not all(alertnames):
            errors.append(f"{where}.match.alertname: give at least one alert name")
        match = Match(
            alertnames,
            tuple(p.match.labels.items()),
            tuple((k, re.compile(v)) for k, v in p.match.labels_regex.items()),
        )
        approval = spec.requires_approval_by_default if p.require_approval is None else p.require_approval
        playbooks.append(
            Playbook(
                p.name,
                match,
                spec,
                params,
                p.target,
                p.mode or schema.mode,
                p.cooldown,
                p.max_per_day,
                approval,
                p.timeout,
            )
        )
    if errors:
        raise ConfigError(errors)
    return Config(
        mode=schema.mode,
        token=token,
        journal=journal,
        journal_timeout=schema.journal_timeout,
        max_body_bytes=schema.max_body_bytes,
        approval_timeout=schema.approval_timeout,
        max_concurrent_actions=schema.max_concurrent_actions,
        shutdown_timeout=schema.shutdown_timeout,
        replica_timeout=schema.replica_timeout,
        targets=tuple(targets),
        aws=aws,
        playbooks=tuple(playbooks),
    )


def load_config(path: Path, registry: ActionRegistry) -> Config:
    return build_config(load_yaml(path), registry)


def summary(config: Config) -> str:
    lines = [
        f"mode: {config.mode}",
        f"auth: {'bearer token' if config.token else 'none'}",
        f"journal: {config.journal_display()}",
        f"targets: {', '.join(f'{t.name} ({t.display})' for t in config.targets) or '-'}",
        f"aws: {config.aws.region + (' via ' + config.aws.endpoint_url if config.aws.endpoint_url else '') if config.aws else '-'}",
        f"playbooks: {len(config.playbooks)}",
    ]
    for p in config.playbooks:
        extra = [f"mode={p.mode}", f"cooldown={format_duration(p.cooldown)}"]
        if p.max_per_day is not None:
            extra.append(f"max_per_day={p.max_per_day}")
        if p.require_approval:
            extra.append("require_approval")
        lines.append(f"  - {p.name}: {'|'.join(p.match.alertnames)} -> {p.action} ({', '.join(extra)})")
    return "\n".join(lines)
