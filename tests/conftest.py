"""Shared fixtures: a real PostgreSQL server (Debian's 15), started once per test session.

When the server binaries are missing the tests that need them skip locally, but fail when
PGWARDEN_REQUIRE_SERVICES=1 (as in CI). PGWARDEN_PG_MAJOR=13..18 runs the session on that major version
instead, from the pinned relocatable builds of devtools.pgversions (`make test-versions`).

Under pytest-xdist (`make pytest` runs `pytest -n auto --dist loadscope`) every worker is a session of its own,
with its own server, moto server and ports (devtools.processes.free_port). Work goes to the workers a module at a
time, so that a module's fixtures start once, in the order of the collection: each worker runs its modules in the
order a serial run would (what one test leaves in the cluster-wide statistics, another may see, as serially);
the modules of one SAME_WORKER group go to one worker, one after the other.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devtools import pgversions
from devtools.pgserver import PostgresServer, PostgresUnavailable, start_server
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE, requested_major
from tests.support.services import missing_service

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import LoadScopeScheduling

MAX_WORKERS = 4  # `-n auto` on a larger machine: the tests wait on servers more than they compute
# Modules run by one worker, one after the other. (Not xdist_group marks: under pytest 9.2, pytest-xdist 3.8's
# loadgroup loses them, pytest-xdist issue 1386.)
SAME_WORKER = {
    # the venv builds: CPU-heavy, and one pip cache
    "tests/deploy/test_extras.py": "venv",
    "tests/deploy/test_compose.py": "venv",
    # the report scenario (a session fixture: exporter and Prometheus on a database) starts once
    "tests/responder/report/test_report.py": "report",
    "tests/responder/ui/test_browser.py": "report",
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per CPU, at most MAX_WORKERS (PYTEST_XDIST_AUTO_NUM_WORKERS still decides)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadScopeScheduling | None:
    """`--dist loadscope` by module (not class), the SAME_WORKER modules as one unit, in collection order."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SAME_WORKER.get(module, module)

    config.option.loadscopereorder = False  # the collection's order, not the largest modules first
    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    major = requested_major()
    try:
        bindir = pgversions.install(major) if major is not None else None
        server = start_server(bindir=bindir)
    except (PostgresUnavailable, pgversions.VersionUnavailable) as exc:
        missing_service(f"PostgreSQL ({exc})")
        raise AssertionError("unreachable") from exc
    try:
        if major is not None:  # the matrix must never silently test another version
            running = int(server.execute("SHOW server_version_num")[0][0]) // 10000
            assert running == major, f"PGWARDEN_PG_MAJOR={major} but the server is PostgreSQL {running}"
        server.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def monitor_dsn(pg_server: PostgresServer) -> str:
    """DSN of a non-superuser member of pg_monitor, as on RDS."""
    return pg_server.dsn("postgres", user=MONITOR_ROLE, password=MONITOR_PASSWORD)
