"""The advice tests' workload: one planted database (with hypopg) for the module, a new one where a test needs
its own."""

from __future__ import annotations

import pytest

from devtools.pgserver import PostgresServer
from tests.responder.advice.workload import Planted, plant


@pytest.fixture(scope="module")
def planted(pg_server: PostgresServer) -> Planted:
    return plant(pg_server)
