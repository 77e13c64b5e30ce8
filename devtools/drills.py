"""The restore drill the demo and the panel test schedule: moto restores the instance, and the drill's checks
run against the local PostgreSQL instead (moto's endpoints do not resolve)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SHOP_REACHABLE: Mapping[str, Any] = {
    "name": "shop reachable",
    "sql": "SELECT count(*) FROM pg_database WHERE datname = 'shop'",
    "expect": {"min": 1},
}


def local_restore_drill(
    name: str,
    dbidentifier: str,
    region: str,
    dsn_env: str,
    port: int,
    checks: Sequence[Mapping[str, Any]] = (SHOP_REACHABLE,),
) -> dict[str, Any]:
    """A weekly enforced `restore_drill` schedule of `dbidentifier` from its latest snapshot, whose checks
    connect through the DSN in `dsn_env` to 127.0.0.1:`port`."""
    return {
        "name": name,
        "cron": "0 3 * * 0",
        "action": "restore_drill",
        "target": {"dbidentifier": dbidentifier, "aws_region": region},
        "mode": "enforce",
        "params": {
            "source": "latest_snapshot",
            "wait_timeout": "2m",
            "max_lifetime": "10m",
            "connect": {"dsn_env": dsn_env, "host_override": "127.0.0.1", "port_override": port},
            "checks": [dict(check) for check in checks],
        },
    }
