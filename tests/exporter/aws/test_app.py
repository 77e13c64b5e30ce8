"""The AWS half through the HTTP service: /metrics, /probe, /discovery; scrapes served from cache."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from exporter.app import AWS, make_app
from exporter.assemble import resolve_targets
from exporter.aws.config import AWSConfig
from exporter.aws.poller import SOURCES, AWSPoller
from exporter.config import parse_config
from exporter.probe import ProbeSettings
from exporter.serving import ServeOptions
from exporter.upstream_config import AuthModule, ProbeAllowlist
from tests.exporter.aws import support
from tests.exporter.aws.support import DOWN_DSN, REGION, Recording, aws_config, build_world
from tests.support.exporter import Samples

moto, moto_session, own_moto = support.moto, support.moto_session, support.own_moto  # fixtures
Client = TestClient[web.Request, web.Application]

TARGETS = [
    {
        "name": "production",
        "dsn": DOWN_DSN,
        "connect_timeout": "1s",
        "rds": {"identifier": "prod", "region": REGION, "backup_regions": ["eu-west-1"]},
    },
    {"name": "reporting", "dsn": DOWN_DSN, "connect_timeout": "1s"},
]


async def started(aiohttp_client: Any, config: dict[str, Any]) -> tuple[Client, AWSPoller | None]:
    """The app with its pollers' first poll of every source done (intervals are long: no more polls)."""
    parsed = parse_config(config)
    client: Client = await aiohttp_client(make_app(parsed, resolve_targets(parsed)))
    poller = client.app.get(AWS)
    if poller is not None:
        for source in SOURCES:
            await asyncio.wait_for(poller.polled[source].wait(), 20)
    return client, poller


async def started_on_world(aiohttp_client: Any) -> tuple[Client, AWSPoller]:
    """build_world's instances, and the app over TARGETS with aws_config(), its first polls done."""
    build_world()
    client, poller = await started(aiohttp_client, {"targets": TARGETS, "aws": aws_config()})
    assert poller is not None
    return client, poller


async def scrape(client: Client, path: str = "/metrics") -> Samples:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return Samples(await resp.text())


async def test_metrics_serve_rds_series_from_cache_with_zero_aws_calls(
    aiohttp_client: Any, moto: MotoServer
) -> None:
    client, poller = await started_on_world(aiohttp_client)
    recording = Recording(moto)
    recording.start()
    before = poller.stats.snapshot()
    for _ in range(3):
        s = await scrape(client)
    assert poller.stats.snapshot()[:1] == before[:1]  # no call counted ...
    assert recording.stop() == []  # ... and none reached moto
    assert s.get("pg_up", target="production") == 0
    # the configured target's instance carries its target label; discovered ones carry none
    assert s.get("rds_instance_status", dbidentifier="prod", target="production") == 1
    assert s.get("rds_instance_status", dbidentifier="prod-replica") == 1
    assert "target" not in s.all("rds_instance_status", dbidentifier="prod-replica")[0][0]
    assert s.get("rds_free_storage_bytes", dbidentifier="prod", target="production") == 5e9
    # prod: the 22 default metrics but ReplicaLag and DBLoad* (no Performance Insights); prod-replica: those and
    # ReplicaLag; sleepy is stopped: none
    assert s.get("pgwarden_cloudwatch_metrics_requested_total") == 18 + 19
    assert s.get("pgwarden_aws_api_calls_total", api="cloudwatch", operation="GetMetricData") == 1
    assert s.get("pgwarden_aws_data_age_seconds", source="cloudwatch") is not None


async def test_probe_configured_target_and_discovered_dbidentifier(
    aiohttp_client: Any, moto: MotoServer
) -> None:
    client, _ = await started_on_world(aiohttp_client)
    production = await scrape(client, "/probe?target=production")
    assert production.get("pg_up") == 0
    assert production.get("rds_instance_status", dbidentifier="prod") == 1
    assert all("target" not in lbl for _, lbl, _ in production.samples)
    assert {lbl["dbidentifier"] for lbl, _ in production.all("rds_instance_info")} == {"prod"}
    replica = await scrape(client, "/probe?target=prod-replica")
    assert replica.get("rds_replica_lag_seconds", dbidentifier="prod-replica") == 3.0
    assert replica.get("pg_up") is None and replica.names() <= {
        n for n in replica.names() if n.startswith("rds_")
    }
    full = await scrape(client, f"/probe?target=123456789012/{REGION}/sleepy")
    assert full.get("rds_instance_status") == 0
    assert (await client.get("/probe?target=nope")).status == 404


async def test_discovery_lists_configured_and_discovered_targets(
    aiohttp_client: Any, moto: MotoServer
) -> None:
    client, _ = await started_on_world(aiohttp_client)
    resp = await client.get("/discovery")
    assert resp.status == 200 and resp.content_type == "application/json"
    groups = await resp.json()
    by_param = {g["labels"]["__param_target"]: g for g in groups}
    assert set(by_param) == {"production", "reporting", "prod-replica", "sleepy"}
    assert all(g["targets"] == [f"{client.server.host}:{client.server.port}"] for g in groups)
    assert by_param["production"]["labels"] == {
        "__param_target": "production",
        "target": "production",
        "dbidentifier": "prod",
        "aws_region": REGION,
        "aws_account_id": "123456789012",
        "tag_team": "db",
    }
    assert by_param["reporting"]["labels"] == {"__param_target": "reporting", "target": "reporting"}
    assert by_param["sleepy"]["labels"]["dbidentifier"] == "sleepy"
    assert "target" not in by_param["sleepy"]["labels"]


async def test_stopped_endpoint_keeps_last_values_errors_counted_and_http_200(
    aiohttp_client: Any, own_moto: MotoServer
) -> None:
    client, poller = await started_on_world(aiohttp_client)
    good = await scrape(client)
    own_moto.stop()
    poller.requested.clear()  # every CloudWatch metric due again
    for source in SOURCES:  # the next poll of each source, as the timers would run it
        assert not await poller.poll(source)
    bad = await scrape(client)
    for metric in (
        "rds_free_storage_bytes",
        "rds_instance_info",
        "rds_latest_cross_region_snapshot_time_seconds",
    ):
        assert bad.all(metric) == good.all(metric), metric
    assert bad.get("pgwarden_aws_api_errors_total", api="rds", code="EndpointConnectionError")  # > 0
    assert bad.get("pgwarden_aws_api_errors_total", api="cloudwatch", code="EndpointConnectionError")
    assert bad.get("pgwarden_aws_data_age_seconds", source="rds") >= good.get(  # type: ignore[operator]
        "pgwarden_aws_data_age_seconds", source="rds"
    )


async def test_without_aws_section_or_rds_no_poller_and_no_aws_series(
    aiohttp_client: Any, monkeypatch: Any
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    plain = [{k: v for k, v in t.items() if k != "rds"} for t in TARGETS]
    client, poller = await started(aiohttp_client, {"targets": plain})
    assert poller is None
    s = await scrape(client)
    assert not [n for n in s.names() if n.startswith(("rds_", "pgwarden_aws", "pgwarden_cloudwatch"))]
    groups = await (await client.get("/discovery")).json()
    assert [g["labels"]["__param_target"] for g in groups] == ["production", "reporting"]
    assert "dbidentifier" not in groups[0]["labels"]
    assert (await client.get("/probe?target=prod")).status == 404


async def test_rds_without_aws_section_polls_with_the_default_settings(
    aiohttp_client: Any, moto: MotoServer
) -> None:
    build_world()
    client, poller = await started(aiohttp_client, {"targets": TARGETS})
    assert poller is not None and poller.aws == AWSConfig()
    s = await scrape(client)
    assert s.get("rds_instance_status", dbidentifier="prod", target="production") == 1
    assert s.get("pgwarden_aws_data_age_seconds", source="rds") is not None
    # the defaults discover nothing: only the configured instance is polled
    assert s.all("rds_instance_status", dbidentifier="prod-replica") == []


async def test_probe_allowlist_of_discovered_rds_endpoints(aiohttp_client: Any, moto: MotoServer) -> None:
    """`probe_targets: {discovered_rds: true}`: the endpoints the AWS poller found may be probed (this one
    does not resolve: pg_up 0), any other host is refused before a connection is tried."""
    build_world()
    parsed = parse_config({"targets": TARGETS, "aws": aws_config()})
    allow = ProbeAllowlist(discovered_rds=True)
    module = AuthModule.model_validate({"type": "userpass", "userpass": {"username": "u", "password": "p"}})
    serving = ServeOptions(probes=ProbeSettings({"m": module}, allow))
    client: Client = await aiohttp_client(make_app(parsed, resolve_targets(parsed), serving))
    poller = client.app[AWS]
    await asyncio.wait_for(poller.polled["rds"].wait(), 20)
    endpoints = {i.endpoint for i in poller.view.instances if i.endpoint}
    assert endpoints
    for endpoint in sorted(endpoints)[:2]:
        resp = await client.get("/probe", params={"target": f"{endpoint}:5432/postgres", "auth_module": "m"})
        assert resp.status == 200, await resp.text()
        assert Samples(await resp.text()).get("pg_up") == 0
    resp = await client.get("/probe", params={"target": "db.example.com:5432/postgres", "auth_module": "m"})
    assert resp.status == 403 and "db.example.com is not in probe_targets" in await resp.text()
