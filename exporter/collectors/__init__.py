"""Every collector, one per module, found by the registry; `build_collectors` makes the enabled ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.collectors.base import Collector
from exporter.collectors.registry import COLLECTORS

if TYPE_CHECKING:
    from exporter.config import ExporterConfig

__all__ = ["COLLECTORS", "build_collectors", "collector_timeout", "collector_ttl"]


def collector_ttl(config: ExporterConfig, collector: Collector[Any, Any]) -> float:
    """Its own `ttl`, else `collectors.defaults.ttl`, else the collector's built-in default."""
    ttl: float | None = collector.options.ttl
    if ttl is not None:
        return ttl
    default = config.collectors.defaults.ttl
    return default if default is not None else collector.default_ttl


def collector_timeout(config: ExporterConfig, collector: Collector[Any, Any]) -> float:
    timeout: float | None = collector.options.timeout
    return timeout if timeout is not None else config.collectors.defaults.timeout


def build_collectors(config: ExporterConfig) -> list[Collector[Any, Any]]:
    """Instances of the enabled collectors, with their options and the cardinality limits; then one per
    custom query (`custom_queries:` and `--extend.query-path`)."""
    built: list[Collector[Any, Any]] = []
    for cls in COLLECTORS:
        options = config.collectors.options(cls.name)
        if options.enabled:
            built.append(cls(options, config.limits))
    from exporter.custom import custom_collectors  # imports this package's modules: not at the top

    return built + custom_collectors(config)
