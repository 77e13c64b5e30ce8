"""Custom queries: postgres_exporter's queries.yaml (`--extend.query-path`) and pgwarden's `custom_queries:`.

Each query is a collector named `custom:<name>` (the queries.yaml key, or the entry's `name`), built next to the
registry's collectors by `exporter.assemble`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.collectors.base import Collector
from exporter.collectors.options import CollectorOptions, LimitsConfig
from exporter.collectors.registry import COLLECTORS
from exporter.custom.collector import custom_collector, extended_collector
from exporter.custom.config import CustomQuery
from exporter.custom.queries_file import QueryFile
from exporter.framework import FRAMEWORK_FAMILIES

__all__ = ["ExtendedQueries", "custom_collectors", "custom_query_errors"]


@dataclass(frozen=True)
class ExtendedQueries:
    """A loaded queries.yaml, and whether its queries visit every database (`--auto-discover-databases`)."""

    path: Path
    file: QueryFile
    auto_discover: bool = False
    hashsum: str = ""  # the file's SHA-256, for pg_exporter_user_queries_load_error


def custom_collectors(
    extended: ExtendedQueries | None,
    custom_queries: Sequence[CustomQuery],
    limits: LimitsConfig,
    timeout: float,
) -> list[Collector[Any, Any]]:
    """One collector per queries.yaml entry and per enabled `custom_queries:` entry; `timeout` is the
    collectors' default (`collectors.defaults.timeout`)."""
    built: list[Collector[Any, Any]] = []
    if extended is not None:
        for namespace, query in extended.file.root.items():
            cls = extended_collector(namespace, query, extended.auto_discover, timeout)
            ttl = float(query.cache_seconds) if query.cache_seconds else None
            built.append(cls(CollectorOptions(ttl=ttl), limits))
    for custom in custom_queries:
        if custom.enabled:
            built.append(custom_collector(custom, timeout)(custom.options, limits))
    return built


def custom_query_errors(extended: ExtendedQueries | None, custom_queries: Sequence[CustomQuery]) -> list[str]:
    """Query names and metric names unique across both kinds and the built-in families."""
    builtin = {f.name for f in FRAMEWORK_FAMILIES} | {f.name for c in COLLECTORS for f in c.families}
    prefixes = tuple(n.split("<", 1)[0] for n in builtin if "<" in n)  # pg_settings_<name> and the like
    errors: list[str] = []
    queries: dict[str, str] = {}  # collector name -> where it is defined
    metrics: dict[str, str] = {}  # metric name -> where it is defined

    def claim(name: str, where: str) -> None:
        if name in builtin or name.startswith(prefixes):
            errors.append(f"{where}: {name} is a metric of the exporter's own collectors")
        elif name in metrics:
            errors.append(f"{where}: duplicate metric name {name} (also {metrics[name]})")
        else:
            metrics[name] = where

    if extended is not None:
        for namespace, query in extended.file.root.items():
            queries[namespace] = f"{extended.path}: {namespace}"
            for column, spec in query.columns.items():
                if spec.usage not in ("LABEL", "DISCARD"):
                    suffix = "_milliseconds" if spec.usage == "DURATION" else ""
                    claim(f"{namespace}_{column}{suffix}", f"{extended.path}: {namespace}.metrics.{column}")
    for i, custom in enumerate(custom_queries):
        if custom.name in queries:
            errors.append(f"custom_queries.{i}.name: {custom.name} is also defined by {queries[custom.name]}")
        queries.setdefault(custom.name, f"custom_queries.{i}")
        for j, metric in enumerate(custom.metrics):
            claim(metric.name, f"custom_queries.{i}.metrics.{j}.name")
    return errors
