"""Exporter configuration: strict models validated at load, every error reported with its key path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import (
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from exporter.aws.config import AWSConfig
from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import StrictModel, error_lines, load_yaml
from pgwarden.durations import Duration

ALWAYS_EXCLUDED_DATABASES = ("template0", "template1", "rdsadmin")


class DatabasesConfig(StrictModel):
    """Which databases of a server the per-database collectors visit (empty include = all)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class RDSConfig(StrictModel):
    identifier: str = Field(min_length=1)
    region: str = Field(min_length=1)
    backup_regions: tuple[str, ...] = ()
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")


class TargetConfig(StrictModel):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: Path | None = None
    databases: DatabasesConfig = DatabasesConfig()
    rds: RDSConfig | None = None
    connect_timeout: Duration = 3.0
    pool_size: int = Field(default=2, ge=1, le=16)

    @model_validator(mode="after")
    def _one_dsn_source(self) -> TargetConfig:
        given = [k for k in ("dsn", "dsn_env", "dsn_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dsn, dsn_env or dsn_file")
        return self


class CollectorOptions(StrictModel):
    """Options every collector takes; None means the collector's own default."""

    enabled: bool = True
    timeout: Duration | None = None
    ttl: Duration | None = None


class ActivityOptions(CollectorOptions):
    long_running_thresholds: tuple[PositiveInt, ...] = (60, 120, 300)


class StatementsOptions(CollectorOptions):
    include_query: bool = False
    query_max_length: int = Field(default=200, ge=16)


class CollectorDefaults(StrictModel):
    timeout: Duration = 5.0
    ttl: Duration | None = None


class CollectorsConfig(StrictModel):
    defaults: CollectorDefaults = CollectorDefaults()
    activity: ActivityOptions = ActivityOptions()
    database: CollectorOptions = CollectorOptions()
    database_size: CollectorOptions = CollectorOptions()
    locks: CollectorOptions = CollectorOptions()
    bgwriter: CollectorOptions = CollectorOptions()
    settings: CollectorOptions = CollectorOptions()
    postmaster: CollectorOptions = CollectorOptions()
    tables: CollectorOptions = CollectorOptions()
    statio_tables: CollectorOptions = CollectorOptions()
    indexes: CollectorOptions = CollectorOptions()
    statements: StatementsOptions = StatementsOptions()
    replication: CollectorOptions = CollectorOptions()
    archiver: CollectorOptions = CollectorOptions()
    wraparound: CollectorOptions = CollectorOptions()
    bloat: CollectorOptions = CollectorOptions()


class LimitsConfig(StrictModel):
    """Cardinality caps; 0 means no cap."""

    statements_top_n: int = Field(default=100, ge=0)
    tables_per_database: int = Field(default=2000, ge=0)
    indexes_per_database: int = Field(default=2000, ge=0)


class ExporterConfig(StrictModel):
    targets: tuple[TargetConfig, ...]
    collectors: CollectorsConfig = CollectorsConfig()
    limits: LimitsConfig = LimitsConfig()
    aws: AWSConfig | None = None  # absent: no AWS call at all; `aws: {}` polls the targets' `rds:` instances

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: tuple[TargetConfig, ...]) -> tuple[TargetConfig, ...]:
        if not targets:
            raise ValueError("list at least one server")
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique: {', '.join(dupes)}")
        return targets


@dataclass(frozen=True)
class Target:
    """A configured server with its secret DSN resolved; `display` is safe to log."""

    name: str
    conninfo: str
    display: str
    config: TargetConfig


def describe_dsn(conninfo: str) -> str:
    """host:port/dbname of a DSN, never its user or password."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparseable dsn>"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or params.get("user") or "postgres")
    return f"{host}:{port}/{dbname}"


def parse_config(data: Any) -> ExporterConfig:
    """Validate a parsed YAML document; raises ConfigError listing every bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: the configuration must be a mapping"])
    try:
        return ExporterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc)) from None


def load_config_file(path: Path) -> ExporterConfig:
    return parse_config(load_yaml(path))


def config_from_environment(env: dict[str, str]) -> ExporterConfig:
    """Zero-config mode, as postgres_exporter: DATA_SOURCE_NAME (comma-separated DSNs), or
    DATA_SOURCE_URI with DATA_SOURCE_USER[_FILE] and DATA_SOURCE_PASS[_FILE]."""
    dsns: list[str] = []
    if env.get("DATA_SOURCE_NAME"):
        dsns = [d.strip() for d in env["DATA_SOURCE_NAME"].split(",") if d.strip()]
    elif env.get("DATA_SOURCE_URI"):
        user = _env_or_file(env, "DATA_SOURCE_USER")
        password = _env_or_file(env, "DATA_SOURCE_PASS")
        for uri in env["DATA_SOURCE_URI"].split(","):
            uri = uri.strip().removeprefix("postgresql://").removeprefix("postgres://")
            extra = {k: v for k, v in (("user", user), ("password", password)) if v}
            dsns.append(make_conninfo(f"postgresql://{uri}", **extra))
    if not dsns:
        raise ConfigError(
            ["DATA_SOURCE_NAME: not set; give it (postgresql://user:pass@host:5432/db) or --config FILE"]
        )
    targets = [{"name": describe_dsn(d), "dsn": d} for d in dsns]
    # Two DSNs naming the same host:port/db would clash; number them.
    seen: dict[str, int] = {}
    for t in targets:
        n = seen[t["name"]] = seen.get(t["name"], 0) + 1
        if n > 1:
            t["name"] = f"{t['name']}-{n}"
    return parse_config({"targets": targets})


def _env_or_file(env: dict[str, str], key: str) -> str | None:
    if env.get(key):
        return env[key]
    path = env.get(key + "_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError([f"{key}_FILE: cannot read {path}: {exc.strerror}"]) from None
    return None


def _read_dsn(target: TargetConfig, env: dict[str, str]) -> tuple[str, str | None]:
    """(key, DSN), or (key + ": why", None) when the DSN cannot be had."""
    if target.dsn_env is not None:
        value = env.get(target.dsn_env, "").strip()
        if not value:
            return f"dsn_env: environment variable {target.dsn_env} is not set", None
        return "dsn_env", value
    if target.dsn_file is not None:
        try:
            value = target.dsn_file.read_text().strip()
        except OSError as exc:
            return f"dsn_file: cannot read {target.dsn_file}: {exc.strerror}", None
        return ("dsn_file", value) if value else (f"dsn_file: {target.dsn_file} is empty", None)
    value = (target.dsn or "").strip()
    return ("dsn", value) if value else ("dsn: the DSN is empty", None)


def resolve_targets(config: ExporterConfig, env: dict[str, str] | None = None) -> list[Target]:
    """Resolve every target's DSN from dsn, dsn_env or dsn_file; errors name the key."""
    env = dict(os.environ) if env is None else env
    errors: list[str] = []
    resolved: list[Target] = []
    for i, t in enumerate(config.targets):
        key, conninfo = _read_dsn(t, env)
        if conninfo is None:
            errors.append(f"targets.{i}.{key}")
            continue
        try:
            conninfo_to_dict(conninfo)
        except Exception:
            errors.append(f"targets.{i}.{key}: the DSN does not parse (its text is not shown)")
            continue
        resolved.append(Target(t.name, conninfo, describe_dsn(conninfo), t))
    if errors:
        raise ConfigError(errors)
    return resolved
