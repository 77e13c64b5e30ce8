"""RDS through boto3: the resolved `aws:` settings and the clients. Every client the responder makes comes from
`RdsApi`'s `pgwarden.aws.AwsClients`, which guards it (`guard_client`). boto3 blocks, so every call runs in a
thread under a timeout (`RdsApi.call`). Imports nothing else of the responder."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pgwarden.aws import AwsClients, ClientSettings

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

T = TypeVar("T")


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
        settings = ClientSettings(
            max_attempts=3,
            connect_timeout=min(5.0, config.timeout),
            read_timeout=config.timeout,
            endpoint_url=config.endpoint_url,
            user_agent_extra="pgwarden-responder",
        )
        self._aws = AwsClients(settings, prepare=[guard_client])
        self._clients: dict[str, RDSClient] = {}
        self._lock = threading.Lock()

    def client(self, region: str | None = None) -> RDSClient:
        region = region or self.config.region
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._clients[region] = self._aws.client("rds", region)
            return client

    def secrets_client(self, region: str | None = None) -> Any:
        """A Secrets Manager client (guarded like the RDS ones), for the recovery's secret."""
        return self._aws.client("secretsmanager", region or self.config.region)

    async def call(self, fn: Callable[[], T]) -> T:
        """A blocking boto3 call in a thread, under the configured AWS timeout (twice: retries included)."""
        async with asyncio.timeout(self.config.timeout * 2):
            return await asyncio.to_thread(fn)

    async def describe_instance(self, identifier: str, region: str) -> dict[str, Any]:
        client = self.client(region)
        resp = await self.call(lambda: client.describe_db_instances(DBInstanceIdentifier=identifier))
        instances = resp.get("DBInstances", [])
        if len(instances) != 1:
            raise LookupError(f"RDS instance {identifier} not found in {region}")
        return dict(instances[0])
