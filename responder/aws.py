"""RDS through boto3: the resolved `aws:` settings and the client. boto3 blocks, so every call runs in a thread
under a timeout. Imports nothing else of the responder."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient


READ_PREFIXES = ("Describe", "List", "Get", "Download")


class UngatedEffect(RuntimeError):
    """A mutating AWS call was about to be sent without passing through the effect gate: never sent."""


_PASSED: contextvars.ContextVar[str | None] = contextvars.ContextVar("pgwarden_gate_passed", default=None)


def is_read(operation: str) -> bool:
    """Whether an AWS operation only reads (Describe*, List*, Get*, Download*)."""
    return operation.startswith(READ_PREFIXES)


def _refuse_ungated(model: Any, **_: Any) -> None:
    operation = str(getattr(model, "name", ""))
    if not is_read(operation) and _PASSED.get() != operation:
        raise UngatedEffect(f"{operation} was not sent: it did not pass through the effect gate")


def guard_client(client: Any) -> Any:
    """Make a boto3 client refuse every mutating operation that `responder.effects` did not let through."""
    client.meta.events.register("before-call.*.*", _refuse_ungated, unique_id="pgwarden-effect-gate")
    return client


@contextmanager
def passing(operation: str) -> Iterator[None]:
    """Let `operation` through the clients' guard in this context (only `responder.effects` calls this)."""
    token = _PASSED.set(operation)
    try:
        yield
    finally:
        _PASSED.reset(token)


@dataclass(frozen=True)
class AwsConfig:
    """The `aws:` section, resolved: `endpoint_url` falls back to AWS_ENDPOINT_URL, else AWS itself."""

    region: str
    endpoint_url: str | None
    timeout: float


class RdsApi:
    """One boto3 RDS client per region, created on first use; calls are async with a timeout."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self._session = boto3.session.Session()
        self._clients: dict[str, RDSClient] = {}
        self._lock = threading.Lock()
        self._boto_config = BotoConfig(
            connect_timeout=min(5.0, config.timeout),
            read_timeout=config.timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        )

    def client(self, region: str | None = None) -> RDSClient:
        region = region or self.config.region
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._session.client(
                    "rds", region_name=region, endpoint_url=self.config.endpoint_url, config=self._boto_config
                )
                self._clients[region] = guard_client(client)
            return client

    def secrets_client(self, region: str | None = None) -> Any:
        """A Secrets Manager client (guarded like the RDS ones), for the recovery's secret."""
        return guard_client(
            self._session.client(
                "secretsmanager",
                region_name=region or self.config.region,
                endpoint_url=self.config.endpoint_url,
                config=self._boto_config,
            )
        )

    async def describe_instance(self, identifier: str, region: str) -> dict[str, Any]:
        client = self.client(region)
        resp = await self._call(lambda: client.describe_db_instances(DBInstanceIdentifier=identifier))
        instances = resp.get("DBInstances", [])
        if len(instances) != 1:
            raise LookupError(f"RDS instance {identifier} not found in {region}")
        return dict(instances[0])

    async def _call(self, fn: Any) -> Any:
        async with asyncio.timeout(self.config.timeout * 2):
            return await asyncio.to_thread(fn)
