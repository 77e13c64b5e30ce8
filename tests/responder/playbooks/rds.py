"""What the scale_instance and grow_storage tests share; both run against a real moto server process.

moto applies every modification at once and models neither PendingModifiedValues nor the
`storage-optimization` status. Where a test needs those, it shapes the real DescribeDBInstances answer from
moto with a botocore `after-call` hook on the responder's own client, so the response still comes from moto
and goes through the responder's code unchanged. `stopped` is real: moto's StopDBInstance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from responder import keys
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done

LADDER = ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"]


def rds_config(make_config: ConfigFactory, moto: MotoServer, **overrides: Any) -> Any:
    """A config with a `scale` and a `grow` playbook on moto (override either with `scale=`/`grow=`)."""
    scale = {
        "name": "scale",
        "match": {"alertname": "RDSCPUHigh"},
        "action": "scale_instance",
        "params": {"ladder": LADDER, "max_class": "db.r6g.xlarge"},
        "require_approval": False,
    }
    grow = {
        "name": "grow",
        "match": {"alertname": "RDSFreeStorageLow"},
        "action": "grow_storage",
        "params": {"increase_percent": 25, "max_allocated_gib": 1000},
    }
    scale.update(overrides.pop("scale", {}))
    grow.update(overrides.pop("grow", {}))
    return make_config(
        aws={"region": "us-east-1", "endpoint_url": moto.endpoint_url}, playbooks=[scale, grow], **overrides
    )


def describe_instance(rds_client: Any, identifier: str) -> dict[str, Any]:
    """The instance as moto has it now (read with the test's own client)."""
    return dict(rds_client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


def shape_answers(client: TestClient[web.Request, web.Application], **fields: Any) -> None:
    """Overlay fields on moto's DescribeDBInstances answers as the responder's client receives them."""

    def hook(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        for inst in parsed.get("DBInstances", []):
            inst.update(fields)

    rds = client.app[keys.RDS]
    assert rds is not None
    rds.client("us-east-1").meta.events.register("after-call.rds.DescribeDBInstances", hook)


async def fire(
    client: TestClient[web.Request, web.Application], name: str, identifier: str, **labels: str
) -> dict[str, Any]:
    """Post one alert about the instance and wait for its decision to be done."""
    (d,) = await post_alerts(client, alert(name, dbidentifier=identifier, aws_region="us-east-1", **labels))
    return await wait_done(client, d["id"])


@dataclass
class Moto:
    """The moto server with the test's own RDS client: instances on it, and responders configured for it."""

    make_config: ConfigFactory
    client_for: ClientFactory
    server: MotoServer
    rds_client: Any
    instance: Callable[..., str]

    def config(self, **overrides: Any) -> Any:
        """`rds_config` on this server."""
        return rds_config(self.make_config, self.server, **overrides)

    async def responder(self, **overrides: Any) -> TestClient[web.Request, web.Application]:
        """A responder client on `config(**overrides)`."""
        return await self.client_for(self.config(**overrides))

    def describe(self, identifier: str) -> dict[str, Any]:
        """`describe_instance` with the test's own client."""
        return describe_instance(self.rds_client, identifier)
