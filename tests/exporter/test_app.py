"""The HTTP service: /metrics, /probe, /healthz, several targets, and servers that are down."""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.pgserver import PostgresServer, free_port, start_server
from exporter.app import make_app
from exporter.assemble import resolve_targets
from exporter.config import parse_config
from tests.support.exporter import DB_A, Samples
from tests.support.grafana import community_dashboard
from tests.support.postgres import MONITOR_PASSWORD
from tests.support.services import installed, missing_service

ROOT = Path(__file__).resolve().parents[2]


async def client_for(aiohttp_client: Any, config: dict[str, Any]) -> TestClient[web.Request, web.Application]:
    parsed = parse_config(config)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        make_app(parsed, resolve_targets(parsed))
    )
    return client


async def get_metrics(client: TestClient[web.Request, web.Application], path: str = "/metrics") -> Samples:
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Samples(await resp.text())


async def test_metrics_single_target_has_no_target_label(
    aiohttp_client: Any, monitor_dsn: str, databases: tuple[str, str]
) -> None:
    client = await client_for(aiohttp_client, {"targets": [{"name": "only", "dsn": monitor_dsn}]})
    samples = await get_metrics(client)
    assert samples.get("pg_up") == 1
    assert all("target" not in lbl for _, lbl, _ in samples.samples)
    assert samples.get("process_resident_memory_bytes") is not None
    assert MONITOR_PASSWORD not in samples.text
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"


async def test_several_targets_label_every_series_and_probe_one(
    aiohttp_client: Any, pg_server: PostgresServer, monitor_dsn: str, databases: tuple[str, str]
) -> None:
    config = {
        "targets": [
            {"name": "primary", "dsn": monitor_dsn},
            {"name": "shop", "dsn": pg_server.dsn(DB_A), "databases": {"include": [DB_A]}},
        ]
    }
    client = await client_for(aiohttp_client, config)
    samples = await get_metrics(client)
    pg_series = [(n, lbl) for n, lbl, _ in samples.samples if n.startswith("pg_")]
    assert pg_series and all("target" in lbl for _, lbl in pg_series)
    assert samples.get("pg_up", target="primary") == 1
    assert samples.get("pg_up", target="shop") == 1
    # each family once, with both targets' samples under it
    types = re.findall(r"^# TYPE (\S+) ", samples.text, flags=re.M)
    assert len(types) == len(set(types))

    probed = await get_metrics(client, "/probe?target=shop")
    assert probed.get("pg_up") == 1
    assert all("target" not in lbl for _, lbl, _ in probed.samples)
    assert {lbl["datname"] for lbl, _ in probed.all("pg_stat_user_tables_seq_scan")} == {DB_A}
    assert probed.get("process_resident_memory_bytes") is None

    missing = await client.get("/probe?target=nope")
    assert missing.status == 404


async def scrape_unreachable(aiohttp_client: Any, name: str, dsn: str) -> Samples:
    """A scrape (HTTP 200) of one target that cannot be reached: pg_up 0 within its 1 s connect timeout."""
    client = await client_for(
        aiohttp_client, {"targets": [{"name": name, "dsn": dsn, "connect_timeout": "1s"}]}
    )
    started = time.monotonic()
    samples = await get_metrics(client)
    assert time.monotonic() - started < 2.5
    assert samples.get("pg_up") == 0
    return samples


async def test_refused_connection_gives_pg_up_0_and_http_200(aiohttp_client: Any) -> None:
    samples = await scrape_unreachable(
        aiohttp_client, "down", f"postgresql://u:secretpw@127.0.0.1:{free_port()}/db"
    )
    assert samples.get("pg_exporter_last_scrape_error") == 1
    assert "secretpw" not in samples.text


async def test_server_that_never_answers_gives_pg_up_0_within_connect_timeout(
    aiohttp_client: Any, blackhole: int
) -> None:
    await scrape_unreachable(aiohttp_client, "hung", f"postgresql://u:pw@127.0.0.1:{blackhole}/db")


async def test_server_restart_is_followed(aiohttp_client: Any) -> None:
    try:
        server = start_server()
    except Exception as exc:  # pragma: no cover - depends on the machine
        missing_service(f"PostgreSQL ({exc})")
        raise
    try:
        client = await client_for(
            aiohttp_client, {"targets": [{"name": "r", "dsn": server.dsn(), "connect_timeout": "1s"}]}
        )
        assert (await get_metrics(client)).get("pg_up") == 1
        server.stop("fast")
        assert (await get_metrics(client)).get("pg_up") == 0
        server.start()
        assert (await get_metrics(client)).get("pg_up") == 1
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def _dashboard_names() -> set[str]:
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str):
                    exprs.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(community_dashboard())
    return {n for e in exprs for n in re.findall(r"\b((?:pg|process)_[a-z0-9_]+)", e)}


def test_dashboard_fixture_is_readable() -> None:
    names = _dashboard_names()
    assert "pg_stat_database_xact_commit" in names and "process_cpu_seconds_total" in names


SPEC_NAMES = """
pg_up pg_static pg_postmaster_start_time_seconds pg_stat_activity_count pg_stat_activity_max_tx_duration
pg_database_size_bytes pg_locks_count pg_stat_user_tables_table_size_bytes pg_stat_user_tables_index_size_bytes
pg_stat_user_tables_last_analyze pg_statio_user_tables_heap_blocks_read pg_statio_user_tables_heap_blocks_hit
pg_statio_user_tables_idx_blocks_read pg_statio_user_tables_idx_blocks_hit pg_statio_user_tables_toast_blocks_read
pg_statio_user_tables_toast_blocks_hit pg_statio_user_tables_tidx_blocks_read pg_statio_user_tables_tidx_blocks_hit
pg_stat_statements_calls_total pg_stat_statements_seconds_total pg_stat_statements_rows_total
pg_stat_statements_block_read_seconds_total pg_stat_statements_block_write_seconds_total
pg_replication_lag_seconds pg_replication_is_replica pg_database_wraparound_age_datfrozenxid_seconds
pg_exporter_last_scrape_duration_seconds pg_exporter_last_scrape_error pg_exporter_scrapes_total
pg_scrape_collector_duration_seconds pg_scrape_collector_success pg_stat_activity_oldest_query_seconds
pg_stat_activity_long_running_queries pg_stat_activity_connections_ratio pg_stat_user_indexes_idx_scan
pg_index_size_bytes pg_index_unused pg_table_bloat_bytes pg_table_bloat_ratio pg_stat_statements_mean_seconds
pg_stat_statements_max_seconds pg_database_xid_age pg_database_wraparound_ratio pg_stat_bgwriter_checkpoints_timed_total
pg_stat_database_xact_commit pg_stat_database_blks_hit pg_stat_database_deadlocks pg_stat_database_conflicts
pg_settings_max_connections pg_settings_shared_buffers_bytes
""".split()


async def test_every_spec_and_dashboard_9628_name_is_exported(
    aiohttp_client: Any, pg_server: PostgresServer, databases: tuple[str, str]
) -> None:
    pg_server.execute("SELECT count(*) FROM orders", dbname=DB_A)  # a statement to report
    client = await client_for(aiohttp_client, {"targets": [{"name": "t", "dsn": pg_server.dsn()}]})
    samples = await get_metrics(client)
    exported = samples.names()
    missing_spec = [n for n in SPEC_NAMES if n not in exported]
    assert not missing_spec
    missing_dashboard = sorted(_dashboard_names() - exported)
    assert not missing_dashboard
    # the lock modes of the dashboard's template variable are all there
    modes = {lbl["mode"] for lbl, _ in samples.all("pg_locks_count")}
    assert {"accessexclusivelock", "rowexclusivelock", "sharelock", "accesssharelock"} <= modes


async def test_promtool_reports_only_postgres_exporter_compatible_names(
    aiohttp_client: Any, pg_server: PostgresServer, databases: tuple[str, str]
) -> None:
    promtool = installed("promtool", "prometheus")
    client = await client_for(aiohttp_client, {"targets": [{"name": "t", "dsn": pg_server.dsn()}]})
    resp = await client.get("/metrics")
    text = await resp.text()
    result = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    linted = set()
    for line in (result.stdout + result.stderr).splitlines():
        match = re.match(r"^(\S+) (.*)$", line.strip())
        assert match, line
        name, complaint = match.groups()
        assert complaint in (
            'counter metrics should have "_total" suffix',
            'non-histogram and non-summary metrics should not have "_count" suffix',
        ), line
        linted.add(name)
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(n for n in linted if f"`{n}`" not in readme)
    assert not undocumented, "list these postgres_exporter-compatible names in the README's lint section"


def test_readme_collectors_table_and_metrics_reference_are_generated_from_the_code() -> None:
    from devtools.metrics_doc import BEGIN, COLLECTORS_BEGIN, COLLECTORS_END, END, collectors_table, table

    readme = (ROOT / "README.md").read_text()
    for begin, end, generated in (
        (BEGIN, END, table()),
        (COLLECTORS_BEGIN, COLLECTORS_END, collectors_table()),
    ):
        assert begin in readme and end in readme
        documented = readme.split(begin, 1)[1].split(end, 1)[0].strip()
        assert documented == generated.strip(), "run: python -m devtools.metrics_doc --write"


async def test_gzip_when_the_client_accepts_it(aiohttp_client: Any, monitor_dsn: str) -> None:
    client = await client_for(aiohttp_client, {"targets": [{"name": "only", "dsn": monitor_dsn}]})
    plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    zipped = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = await zipped.read()
    assert int(zipped.headers["Content-Length"]) == len(raw)
    text = gzip.decompress(raw).decode()
    assert Samples(text).get("pg_up") == 1
