"""Fixtures the playbook tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools.motoserver import MotoServer
from tests.responder.playbooks.rds import Moto
from tests.support.responder import ClientFactory, ConfigFactory


@pytest.fixture
def moto(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> Moto:
    return Moto(make_config, client_for, moto_server, rds_client, rds_instance)
