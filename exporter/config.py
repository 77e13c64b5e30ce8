"""Exporter configuration: strict models validated at load, every error reported with its key path.

The schema and its loading only (from a file, or postgres_exporter's environment variables); what runs from a
loaded configuration is put together by `exporter.assemble`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from psycopg.conninfo import make_conninfo
from pydantic import GetPydanticSchema, PrivateAttr, field_validator

from exporter.aws.config import AWSConfig
from exporter.collectors.options import LimitsConfig
from exporter.collectors.registry import COLLECTORS, CollectorsBase, collectors_model
from exporter.custom import ExtendedQueries
from exporter.custom.config import CustomQuery
from exporter.target import TargetConfig
from pgwarden.config import ConfigError as ConfigError
from pgwarden.config import StrictModel, load_yaml, validate_document
from pgwarden.dsn import describe_dsn

# `collectors:`: `defaults` and one key per collector the registry found, each its collector's options model.
CollectorsConfig = collectors_model(COLLECTORS)


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


def parse_config(data: Any) -> ExporterConfig:
    """Stage 1: validate a parsed YAML document; raises ConfigError listing every bad key."""
    return validate_document(ExporterConfig, data)


def load_config_file(path: Path) -> ExporterConfig:
    return parse_config(load_yaml(path))


def config_from_environment(env: dict[str, str]) -> ExporterConfig:
    """Zero-config mode, as postgres_exporter: DATA_SOURCE_NAME (comma-separated DSNs), or
    DATA_SOURCE_URI[_FILE] with DATA_SOURCE_USER[_FILE] and DATA_SOURCE_PASS[_FILE]."""
    dsns: list[str] = []
    if env.get("DATA_SOURCE_NAME"):
        dsns = [d.strip() for d in env["DATA_SOURCE_NAME"].split(",") if d.strip()]
    elif uris := _env_or_file(env, "DATA_SOURCE_URI"):
        user = _env_or_file(env, "DATA_SOURCE_USER")
        password = _env_or_file(env, "DATA_SOURCE_PASS")
        for uri in uris.split(","):
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
