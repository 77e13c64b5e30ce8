"""The closed loop, all real: PostgreSQL → exporter → Prometheus (the project's rules) → Alertmanager (the
project's routes) → responder. Rule thresholds and the responder routes' group_wait come from
alerts/demo/overrides.yml, applied to copies of the real files; every other timing is the real one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.overrides import demo_alertmanager, demo_rules
from devtools.pgserver import PostgresServer
from devtools.services import (
    Service,
    ServiceUnavailable,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    start_responder,
)
from tests.support.loop import (
    INTERVAL,
    PLAYBOOK,
    THRESHOLD,
    TOKEN,
    Loop,
    Timings,
)
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE
from tests.support.services import missing_service


@pytest.fixture
def loop(pg_server: PostgresServer, tmp_path: Path) -> Iterator[Loop]:
    pg_server.execute("DROP ROLE IF EXISTS loop_responder")
    pg_server.execute(
        "CREATE ROLE loop_responder LOGIN PASSWORD 'loop-responder-pw' IN ROLE pg_signal_backend, pg_read_all_stats"
    )
    pg_server.execute("DROP ROLE IF EXISTS loop_app")
    pg_server.execute("CREATE ROLE loop_app LOGIN PASSWORD 'loop-app-pw'")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    responder_env = {"LOOP_RESPONDER_DSN": pg_server.dsn("postgres", "loop_responder", "loop-responder-pw")}
    services: dict[str, Service] = {}
    try:
        services["exporter"] = start_exporter(
            tmp_path,
            {"targets": [{"name": "loop", "dsn_env": "LOOP_EXPORTER_DSN"}]},
            {"LOOP_EXPORTER_DSN": pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)},
        )
        services["responder"] = start_responder(
            tmp_path,
            {
                "mode": "enforce",
                "token_file": str(token),
                "journal": f"sqlite:///{tmp_path / 'journal.db'}",
                "targets": [{"name": "loop", "dsn_env": "LOOP_RESPONDER_DSN"}],
                "playbooks": [
                    {
                        "name": PLAYBOOK,
                        "match": {"alertname": "PostgresLongRunningQuery"},
                        "action": "terminate_queries",
                        "params": {"min_duration": f"{THRESHOLD:g}s", "grace": "1s", "max_kills": 5},
                        "cooldown": "0s",
                        "max_per_day": 100,
                    }
                ],
            },
            responder_env,
        )
        am_config = demo_alertmanager(
            tmp_path / "alertmanager.yml", f"{services['responder'].url}/webhook", token
        )
        services["alertmanager"] = start_alertmanager(tmp_path, am_config)
        services["prometheus"] = start_prometheus(
            tmp_path,
            {
                "pgwarden-exporter": f"127.0.0.1:{services['exporter'].port}",
                "pgwarden-responder": f"127.0.0.1:{services['responder'].port}",
            },
            demo_rules(tmp_path / "rules"),
            services["alertmanager"],
            interval=f"{INTERVAL:g}s",
        )
    except ServiceUnavailable as exc:
        for service in services.values():
            service.stop()
        if "installed" in str(exc):
            missing_service(str(exc))
        raise
    yield Loop(services, Timings.of(am_config), responder_env, pg_server)
    for service in reversed(list(services.values())):
        service.stop()
