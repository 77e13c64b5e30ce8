"""Options every collector takes, and the limits they share; a collector with more subclasses `CollectorOptions`.

This module imports nothing of the exporter, so collectors and the configuration can both import it.
"""

from __future__ import annotations

from pydantic import Field

from pgwarden.config import StrictModel
from pgwarden.durations import Duration


class CollectorOptions(StrictModel):
    """`collectors.<name>`: None means the collector's own default (or `collectors.defaults`)."""

    enabled: bool = True
    timeout: Duration | None = None
    ttl: Duration | None = None
    # families of this collector left out of its output (postgres_exporter's collectors split ours: its
    # --no-collector.stat_replication drops the replication collector's pg_stat_replication_* families)
    exclude_families: tuple[str, ...] = ()


class OffByDefault(CollectorOptions):
    """The options of a collector postgres_exporter has off by default (`--collector.<name>` turns it on)."""

    enabled: bool = False


class CollectorDefaults(StrictModel):
    """`collectors.defaults`: the timeout of every collector, and a TTL overriding their built-in ones."""

    timeout: Duration = 5.0
    ttl: Duration | None = None
    size_ttl: Duration = 300.0  # relation sizes (they stat files) are measured this often at most


class LimitsConfig(StrictModel):
    """Cardinality caps; 0 means no cap."""

    statements_top_n: int = Field(default=100, ge=0)
    tables_per_database: int = Field(default=2000, ge=0)
    indexes_per_database: int = Field(default=2000, ge=0)
