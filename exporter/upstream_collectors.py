"""postgres_exporter's collectors and the pgwarden collectors (and families) that stand for each.

postgres_exporter names its collectors by the view they read (`stat_activity`, `stat_replication`); pgwarden's
collectors are cut differently (its `activity` collector also exports postgres_exporter's
`stat_activity_autovacuum` family, its `replication` collector both `replication` and `stat_replication`). Each
entry here says which families of which pgwarden collector a postgres_exporter collector is, so that
`--no-collector.<name>` leaves out exactly those families, and the whole pgwarden collector only when nothing
of it is left. The names and defaults are those of postgres_exporter's `config/config.go`
(`DefaultCollectorConfig`), main as of 0.20.1; see tests/fixtures/postgres_exporter/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.collectors.registry import COLLECTORS

BY_NAME = {c.name: c for c in COLLECTORS}


@dataclass(frozen=True)
class Part:
    """Families of one pgwarden collector; `families` empty means all of them."""

    collector: str
    families: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """The family names this part stands for (all of the collector's when `families` is empty)."""
        cls = BY_NAME.get(self.collector)
        if cls is None:
            return ()
        return self.families or tuple(f.name for f in cls.families)


@dataclass(frozen=True)
class UpstreamCollector:
    """A postgres_exporter collector: its name, whether it enables it by default, and pgwarden's parts."""

    name: str
    default: bool
    parts: tuple[Part, ...]
    note: str = ""  # why pgwarden has no part of it


def _all_but(collector: str, *left_out: str) -> Part:
    return Part(collector, tuple(f.name for f in BY_NAME[collector].families if f.name not in left_out))


_REPLICATION_LAG = (
    "pg_replication_lag_seconds",
    "pg_replication_is_replica",
    "pg_replication_last_replay_seconds",
)
_CONNECTION_LIMIT = "pg_database_connection_limit"
_AURORA = "Aurora only: pgwarden monitors RDS PostgreSQL and self-managed servers, not Aurora's own views"

UPSTREAM_COLLECTORS: tuple[UpstreamCollector, ...] = (
    UpstreamCollector("buffercache_summary", False, (Part("buffercache_summary"),)),
    UpstreamCollector("database", True, (Part("database_size"), Part("database", (_CONNECTION_LIMIT,)))),
    UpstreamCollector(
        "database_wraparound",
        False,
        (
            Part(
                "wraparound",
                (
                    "pg_database_wraparound_age_datfrozenxid_seconds",
                    "pg_database_wraparound_age_datminmxid_seconds",
                ),
            ),
        ),
    ),
    UpstreamCollector("locks", True, (Part("locks", ("pg_locks_count",)),)),
    UpstreamCollector("long_running_transactions", False, (Part("long_running_transactions"),)),
    UpstreamCollector("postmaster", False, (Part("postmaster", ("pg_postmaster_start_time_seconds",)),)),
    UpstreamCollector("process_idle", False, (Part("process_idle"),)),
    UpstreamCollector("replication", True, (Part("replication", _REPLICATION_LAG),)),
    UpstreamCollector("replication_slots", True, (Part("replication_slots"),)),
    UpstreamCollector("roles", True, (Part("roles"),)),
    UpstreamCollector("settings", True, (Part("settings"),)),
    UpstreamCollector(
        "stat_activity",
        True,
        (Part("activity", ("pg_stat_activity_count", "pg_stat_activity_max_tx_duration")),),
    ),
    UpstreamCollector(
        "stat_activity_autovacuum",
        False,
        (Part("activity", ("pg_stat_activity_autovacuum_timestamp_seconds",)),),
    ),
    UpstreamCollector("stat_archiver", True, (Part("archiver"),)),
    UpstreamCollector("stat_bgwriter", True, (Part("bgwriter"),)),
    UpstreamCollector("stat_checkpointer", False, (Part("stat_checkpointer"),)),
    UpstreamCollector("stat_database", True, (_all_but("database", _CONNECTION_LIMIT),)),
    UpstreamCollector("stat_progress_vacuum", True, (Part("progress_vacuum"),)),
    UpstreamCollector("stat_replication", True, (_all_but("replication", *_REPLICATION_LAG),)),
    UpstreamCollector("stat_statements", False, (Part("statements"),)),
    UpstreamCollector("stat_user_tables", True, (Part("tables"),)),
    UpstreamCollector("stat_wal_receiver", False, (Part("walreceiver"),)),
    UpstreamCollector("statio_user_indexes", False, (Part("statio_indexes"),)),
    UpstreamCollector("statio_user_tables", True, (Part("statio_tables"),)),
    UpstreamCollector("wal", True, (Part("wal"),)),
    UpstreamCollector("xlog_location", False, (Part("xlog_location"),)),
    *(
        UpstreamCollector(f"aurora_{name}", False, (), _AURORA)
        for name in (
            "global_db_instance_status",
            "global_db_status",
            "replica_status",
            "stat_bgwriter",
            "stat_database",
            "stat_dml_activity",
            "stat_get_db_commit_latency",
            "stat_logical_wal_cache",
            "stat_optimized_reads_cache",
        )
    ),
)
UPSTREAM_BY_NAME = {u.name: u for u in UPSTREAM_COLLECTORS}
# Families postgres_exporter's --disable-default-metrics turns off in 0.20: its remaining built-in metric map
# (pg_stat_database_conflicts) and pg_static; the collectors moved out of that map in 0.20 stay on.
DEFAULT_METRICS = (
    Part("postmaster", ("pg_static",)),
    Part(
        "database",
        tuple(
            f.name for f in BY_NAME["database"].families if f.name.startswith("pg_stat_database_conflicts_")
        ),
    ),
)
