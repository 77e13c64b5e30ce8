"""The demo's cast: its PostgreSQL roles and the exporter's and responder's configuration (enforce mode, the
runbook's playbooks at demo thresholds, the weekly restore drill and index advice as schedules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.demo_migration import MIGRATIONS
from devtools.demo_migration import TARGET as MIGRATION_TARGET
from devtools.demo_shop import advice_schedule
from devtools.drills import SHOP_REACHABLE, local_restore_drill
from devtools.pgserver import PostgresServer

IDENTIFIER = "skillancer-production"
REGION = "us-east-1"
THRESHOLD = 5  # seconds: PostgresLongRunningQuery at demo intervals (alerts/demo/overrides.yml)
LADDER = ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"]
DRILL = "weekly-restore-test"
ANALYZE = "refresh-shop-statistics"  # a schedule that waits for an approval: the demo leaves one waiting
CLOCK_SANE = {
    "name": "clock sane",
    "sql": "SELECT extract(epoch FROM now() - pg_postmaster_start_time())",
    "expect": {"min": 0},
}


def prepare_postgres(server: PostgresServer) -> dict[str, str]:
    server.execute("CREATE ROLE demo_monitor LOGIN PASSWORD 'demo-monitor-pw' IN ROLE pg_monitor")
    server.execute(
        "CREATE ROLE demo_responder LOGIN PASSWORD 'demo-responder-pw' IN ROLE pg_signal_backend, pg_read_all_stats"
    )
    server.execute("CREATE ROLE demo_app LOGIN PASSWORD 'demo-app-pw'")
    server.execute("CREATE DATABASE shop OWNER demo_app")
    # the migration guard's role: no superuser (docs/migrations.md), a member of the tables' owner
    server.execute(
        "CREATE ROLE demo_migrate LOGIN PASSWORD 'demo-migrate-pw' IN ROLE pg_signal_backend, pg_read_all_stats, demo_app"
    )
    return {
        "DEMO_EXPORTER_DSN": server.dsn("postgres", "demo_monitor", "demo-monitor-pw"),
        "DEMO_RESPONDER_DSN": server.dsn("postgres", "demo_responder", "demo-responder-pw"),
        "DEMO_DRILL_DSN": server.dsn("postgres", "demo_monitor", "demo-monitor-pw"),
        "DEMO_MIGRATE_DSN": server.dsn("shop", "demo_migrate", "demo-migrate-pw"),
    }


def exporter_config() -> dict[str, Any]:
    return {
        "targets": [
            {
                "name": "production",
                "dsn_env": "DEMO_EXPORTER_DSN",
                "rds": {"identifier": IDENTIFIER, "region": REGION, "backup_regions": ["eu-west-1"]},
            }
        ],
        "collectors": {"tables": {"ttl": "5s"}, "indexes": {"ttl": "5s"}, "statio_tables": {"ttl": "5s"}},
        "aws": {
            "rds": {"interval": "2s"},
            "snapshots": {"interval": "10s"},
            "cloudwatch": {"interval": "2s", "period": "60s", "delay": "0s", "lookback": "5m"},
        },
    }


def responder_config(workdir: Path, token: Path, port: int, alertmanager_url: str) -> dict[str, Any]:
    return {
        "mode": "enforce",
        "token_file": str(token),
        "approvers": [{"name": "demo", "token_file": str(token.with_name("approver-token"))}],
        "console": {"alertmanager_url": alertmanager_url},
        "journal": f"sqlite:///{workdir / 'journal.db'}",
        "targets": [
            {"name": "production", "dsn_env": "DEMO_RESPONDER_DSN"},
            {
                "name": MIGRATION_TARGET,
                "dsn_env": "DEMO_MIGRATE_DSN",
            },  # `migrate run`'s, in the shop database
        ],
        "migrations": MIGRATIONS,
        "aws": {"region": REGION},
        "playbooks": [
            {
                "name": "kill-long-queries",
                "match": {"alertname": "PostgresLongRunningQuery"},
                "action": "terminate_queries",
                "target": "production",  # the other target, `shop`, is `migrate run`'s
                "params": {"min_duration": f"{THRESHOLD}s", "grace": "1s", "max_kills": 5},
                "cooldown": "1m",
                "max_per_day": 100,
            },
            {
                "name": "grow-storage",
                "match": {"alertname": "RDSFreeStorageLow"},
                "action": "grow_storage",
                "params": {"increase_percent": 25, "max_allocated_gib": 1000},
                "cooldown": "6h",
                "max_per_day": 4,
            },
            {
                "name": "scale-up-on-cpu",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {"ladder": LADDER, "max_class": LADDER[-1]},
                "require_approval": True,  # the default: the demo approves it in the console
                "cooldown": "6h",
                "max_per_day": 2,
            },
        ],
        "schedules": [
            local_restore_drill(
                DRILL, IDENTIFIER, REGION, "DEMO_DRILL_DSN", port, checks=(SHOP_REACHABLE, CLOCK_SANE)
            ),
            {
                "name": ANALYZE,
                "cron": "0 4 1 * *",
                "action": "vacuum_analyze",
                "target": {"target": "production", "datname": "shop"},
                "params": {"tables": "stale_analyze", "stale_after": "1d"},
                "require_approval": True,  # left waiting in the console's approvals for you
            },
            advice_schedule(),
        ],
    }
