"""docs/aws.md's scaling recipe end to end: a real Prometheus reads /discovery and routes each target, with
`hashmod`, to the exporter replica whose `aws.shard` polls it; a wrong route would be a 404, a down target."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.motoserver import MotoServer
from devtools.pgserver import free_port
from exporter.app import AWS, make_app
from exporter.assemble import resolve_targets
from exporter.aws.poller import SOURCES
from exporter.config import parse_config
from tests.exporter.aws import support
from tests.exporter.aws.support import DOWN_DSN, REGION, aws_config, create_postgres, rds
from tests.support.services import installed

moto, moto_session = support.moto, support.moto_session  # fixtures
SHARDS = 2
INSTANCES = [f"db{n:02d}" for n in range(8)]


async def start_replica(aiohttp_client: Any, index: int) -> Any:
    config = parse_config(
        {
            "targets": [{"name": "pg", "dsn": DOWN_DSN, "connect_timeout": "1s"}],
            "aws": aws_config(discover={"regions": [REGION]}, shard={"index": index, "total": SHARDS}),
        }
    )
    client = await aiohttp_client(make_app(config, resolve_targets(config)))
    for source in SOURCES:
        await asyncio.wait_for(client.app[AWS].polled[source].wait(), 20)
    return client


def prometheus_config(ports: list[int]) -> dict[str, Any]:
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {
            "source_labels": ["__param_target"],
            "modulus": SHARDS,
            "target_label": "__tmp_shard",
            "action": "hashmod",
        },
    ]
    relabel += [
        {
            "source_labels": ["__tmp_shard"],
            "regex": str(i),
            "target_label": "__address__",
            "replacement": f"127.0.0.1:{port}",
        }
        for i, port in enumerate(ports)
    ]
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "pgwarden",
                "metrics_path": "/probe",
                "http_sd_configs": [
                    {"url": f"http://127.0.0.1:{ports[0]}/discovery", "refresh_interval": "5s"}
                ],
                "relabel_configs": relabel,
            }
        ],
    }


async def test_prometheus_shards_targets_across_replicas_with_hashmod(
    aiohttp_client: Any, moto: MotoServer, tmp_path: Path
) -> None:
    binary = installed("prometheus", "prometheus")
    east = rds()
    for name in INSTANCES:
        create_postgres(east, name, AllocatedStorage=20)
    replicas = [await start_replica(aiohttp_client, i) for i in range(SHARDS)]
    served = [{i.identifier for i in r.app[AWS].view.instances} for r in replicas]
    assert all(served) and set.union(*served) == set(INSTANCES)  # each replica has a non-empty share
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(prometheus_config([r.server.port for r in replicas]))
    )
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets = await wait_all_up(port, len(INSTANCES) + 1)
        by_instance = {t["labels"]["instance"]: t for t in targets}
        assert set(by_instance) == {"pg", *INSTANCES}
        for index, names in enumerate(served):
            for name in names:  # scraped at the replica that polls it, as /probe?target=<dbidentifier>
                assert by_instance[name]["scrapeUrl"] == (
                    f"http://127.0.0.1:{replicas[index].server.port}/probe?target={name}"
                )
        statuses = await wait_query(port, "rds_instance_status", len(INSTANCES))
        assert {s["metric"]["dbidentifier"] for s in statuses} == set(INSTANCES)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def wait_all_up(port: int, count: int) -> list[dict[str, Any]]:
    """Prometheus' active targets once there are `count` and all are up (30 s at most)."""
    active: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        try:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/api/v1/targets") as resp:
                            active = (await resp.json())["data"]["activeTargets"]
                    except aiohttp.ClientError:
                        active = []
                    if len(active) == count and all(t["health"] == "up" for t in active):
                        return active
                    await asyncio.sleep(0.5)
        except TimeoutError:
            raise AssertionError(
                f"targets not all up: {[(t['scrapeUrl'], t['health'], t['lastError']) for t in active]}"
            ) from None


async def wait_query(port: int, query: str, count: int) -> list[dict[str, Any]]:
    """The query's result once it has `count` series (or what it has after 20 s)."""
    result: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        try:
            async with asyncio.timeout(20):
                while len(result) < count:
                    async with session.get(
                        f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}
                    ) as resp:
                        result = (await resp.json())["data"]["result"]
                    if len(result) < count:
                        await asyncio.sleep(0.5)
        except TimeoutError:
            pass
    return result
