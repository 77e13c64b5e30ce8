"""The exporter's composition root: from a loaded configuration to what runs.

`exporter.config` validates and loads; this module resolves the targets' DSNs (and checks what only the whole
configuration can tell) and makes the collectors each scrape of a target runs, with their TTLs and timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.collectors.base import Collector
from exporter.collectors.registry import COLLECTORS
from exporter.config import ExporterConfig
from exporter.custom import custom_collectors, custom_query_errors
from exporter.refreshing import Scheduled
from exporter.target import Target
from pgwarden.config import Errors
from pgwarden.credentials import DsnSecret, read_secret, resolve_server
from pgwarden.dsn import describe_dsn


def resolve_targets(
    config: ExporterConfig,
    env: dict[str, str] | None = None,
    fetch: Callable[[DsnSecret], str] = read_secret,
) -> list[Target]:
    """Stage 2 of loading: every target's DSN from dsn, dsn_env, dsn_file or dsn_secret (read by `fetch`),
    parsed, and the custom queries' names checked across both kinds; raises ConfigError, each error naming
    its key."""
    errors = Errors()
    resolved: list[Target] = []
    for i, t in enumerate(config.targets):
        region = t.rds.region if t.rds is not None else None
        server = resolve_server(t, f"targets.{i}", errors, region_hint=region, env=env, fetch=fetch)
        if server is not None:
            conninfo, credentials = server
            resolved.append(Target(t.name, conninfo, describe_dsn(conninfo), t, credentials))
    errors.extend(custom_query_errors(config.extended_queries, config.custom_queries))
    errors.raise_if_any()
    return resolved


def build_collectors(config: ExporterConfig) -> list[Collector[Any, Any]]:
    """New instances of the enabled collectors, with their options and the cardinality limits; then one per
    custom query (`custom_queries:` and `--extend.query-path`)."""
    built: list[Collector[Any, Any]] = []
    for cls in COLLECTORS:
        options = config.collectors.options(cls.name)
        if options.enabled:
            built.append(cls(options, config.limits))
    custom = custom_collectors(
        config.extended_queries, config.custom_queries, config.limits, config.collectors.defaults.timeout
    )
    return built + custom


def collector_ttl(config: ExporterConfig, collector: Collector[Any, Any]) -> float:
    """Its own `ttl`, else `collectors.defaults.ttl`, else the collector's built-in default."""
    ttl: float | None = collector.options.ttl
    if ttl is not None:
        return ttl
    default = config.collectors.defaults.ttl
    return default if default is not None else collector.default_ttl


def collector_timeout(config: ExporterConfig, collector: Collector[Any, Any]) -> float:
    """Its own `timeout`, else `collectors.defaults.timeout`."""
    timeout: float | None = collector.options.timeout
    return timeout if timeout is not None else config.collectors.defaults.timeout


def scheduled_collectors(config: ExporterConfig) -> list[Scheduled]:
    """What one target's scrapes run: each enabled collector (its own instance) with its TTL and timeout."""
    return [
        Scheduled(c, collector_ttl(config, c), collector_timeout(config, c)) for c in build_collectors(config)
    ]
