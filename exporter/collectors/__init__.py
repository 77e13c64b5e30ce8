"""Every collector, one per file; `build_collectors` makes the enabled ones from the configuration."""

from __future__ import annotations

from exporter.collectors.activity import ActivityCollector
from exporter.collectors.archiver import ArchiverCollector
from exporter.collectors.base import Collector
from exporter.collectors.bgwriter import BgwriterCollector
from exporter.collectors.bloat import BloatCollector
from exporter.collectors.database import DatabaseCollector
from exporter.collectors.database_size import DatabaseSizeCollector
from exporter.collectors.indexes import IndexesCollector
from exporter.collectors.locks import LocksCollector
from exporter.collectors.postmaster import PostmasterCollector
from exporter.collectors.replication import ReplicationCollector
from exporter.collectors.settings import SettingsCollector
from exporter.collectors.statements import StatementsCollector
from exporter.collectors.statio_tables import StatioTablesCollector
from exporter.collectors.tables import TablesCollector
from exporter.collectors.wraparound import WraparoundCollector
from exporter.config import CollectorOptions, ExporterConfig

COLLECTORS: tuple[type[Collector], ...] = (
    PostmasterCollector,
    SettingsCollector,
    ActivityCollector,
    DatabaseCollector,
    DatabaseSizeCollector,
    LocksCollector,
    BgwriterCollector,
    ReplicationCollector,
    ArchiverCollector,
    WraparoundCollector,
    StatementsCollector,
    TablesCollector,
    StatioTablesCollector,
    IndexesCollector,
    BloatCollector,
)


def collector_ttl(config: ExporterConfig, collector: Collector) -> float:
    """Its own `ttl`, else `collectors.defaults.ttl`, else the collector's built-in default."""
    if collector.options.ttl is not None:
        return collector.options.ttl
    default = config.collectors.defaults.ttl
    return default if default is not None else collector.default_ttl


def collector_timeout(config: ExporterConfig, collector: Collector) -> float:
    timeout = collector.options.timeout
    return timeout if timeout is not None else config.collectors.defaults.timeout


def build_collectors(config: ExporterConfig) -> list[Collector]:
    """Instances of the enabled collectors, with their options and the cardinality limits."""
    built = []
    for cls in COLLECTORS:
        options = getattr(config.collectors, cls.name)
        assert isinstance(options, CollectorOptions)
        if options.enabled:
            built.append(cls(options, config.limits))
    return built
