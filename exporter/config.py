"""Exporter configuration: strict models validated at load, every error reported with its key path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from psycopg.conninfo import make_conninfo
from pydantic import Field, GetPydanticSchema, PrivateAttr, field_validator, model_validator

from exporter.aws.config import AWSConfig
from exporter.collectors.options import LimitsConfig
from exporter.collectors.registry import COLLECTORS, CollectorsBase, collectors_model
from exporter.custom import ExtendedQueries, custom_query_errors
from exporter.custom.config import CustomQuery
from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import Errors, StrictModel, load_yaml, validate_document
from pgwarden.credentials import (
    Credentials,
    DsnSecret,
    IamAuth,
    check_dsn_sources,
    read_secret,
    resolve_server,
)
from pgwarden.dsn import describe_dsn
from pgwarden.durations import Duration

ALWAYS_EXCLUDED_DATABASES = ("template0", "template1", "rdsadmin")

# `collectors:`: `defaults` and one key per collector the registry found, each its collector's options model.
CollectorsConfig = collectors_model(COLLECTORS)


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
    dsn_secret: DsnSecret | None = None
    iam_auth: bool | IamAuth = False
    databases: DatabasesConfig = DatabasesConfig()
    rds: RDSConfig | None = None
    connect_timeout: Duration = 3.0
    pool_size: int = Field(default=2, ge=1, le=16)  # per database
    max_connections: int = Field(default=3, ge=1, le=64)  # all databases together
    idle_timeout: Duration = 10.0  # then an idle connection closes (one to the DSN's database stays)

    @model_validator(mode="after")
    def _one_dsn_source(self) -> TargetConfig:
        check_dsn_sources(self)
        return self


class ExporterConfig(StrictModel):
    targets: tuple[TargetConfig, ...]
    # validated as the registry's CollectorsConfig, typed as its base (one key per collector, known at run time)
    collectors: Annotated[CollectorsBase, GetPydanticSchema(lambda _, handler: handler(CollectorsConfig))] = (
        CollectorsConfig()
    )
    limits: LimitsConfig = LimitsConfig()
    aws: AWSConfig | None = None  # absent: defaults when a target has `rds:` (see polled_aws)
    custom_queries: tuple[CustomQuery, ...] = ()
    _extended_queries: ExtendedQueries | None = PrivateAttr(default=None)  # from --extend.query-path

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

    @property
    def extended_queries(self) -> ExtendedQueries | None:
        """postgres_exporter's queries.yaml, when the command line gave one (`with_extended_queries`)."""
        return self._extended_queries

    def with_extended_queries(self, queries: ExtendedQueries) -> ExporterConfig:
        """This configuration serving a queries.yaml too (a file of its own format, not a key of this one)."""
        copy = self.model_copy()
        copy._extended_queries = queries
        return copy

    @property
    def polled_aws(self) -> AWSConfig | None:
        """The AWS settings to poll with: the `aws:` section, else its defaults when a target has an `rds:`
        block; None, and no AWS call at all, when there is neither."""
        if self.aws is not None:
            return self.aws
        return AWSConfig() if any(t.rds is not None for t in self.targets) else None


@dataclass(frozen=True)
class Target:
    """A configured server with its secret DSN resolved; `display` is safe to log. `credentials`, with a
    Secrets Manager secret or IAM auth, gives each new connection its current password."""

    name: str
    conninfo: str
    display: str
    config: TargetConfig
    credentials: Credentials | None = field(default=None, compare=False, repr=False)


def parse_config(data: Any) -> ExporterConfig:
    """Stage 1: validate a parsed YAML document; raises ConfigError listing every bad key."""
    return validate_document(ExporterConfig, data)


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


def resolve_targets(
    config: ExporterConfig,
    env: dict[str, str] | None = None,
    fetch: Callable[[DsnSecret], str] = read_secret,
) -> list[Target]:
    """Stage 2: every target's DSN from dsn, dsn_env, dsn_file or dsn_secret (read by `fetch`), parsed, and
    the custom queries' names checked across both kinds; errors name the key."""
    errors = Errors()
    resolved: list[Target] = []
    for i, t in enumerate(config.targets):
        region = t.rds.region if t.rds is not None else None
        server = resolve_server(t, f"targets.{i}", errors, region_hint=region, env=env, fetch=fetch)
        if server is not None:
            conninfo, credentials = server
            resolved.append(Target(t.name, conninfo, describe_dsn(conninfo), t, credentials))
    errors.extend(custom_query_errors(config))
    errors.raise_if_any()
    return resolved
