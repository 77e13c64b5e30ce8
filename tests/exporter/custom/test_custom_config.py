"""Custom queries are checked at load: every error names its key path, in the config or the queries file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from exporter.assemble import resolve_targets
from exporter.config import ConfigError, parse_config
from exporter.custom import ExtendedQueries
from exporter.custom.queries_file import load_query_file
from tests.support.exporter_process import clean_env, run_cli

DSN = "postgresql://pgwarden@127.0.0.1:5432/postgres"


def metric(name: str, column: str = "value", **extra: Any) -> dict[str, Any]:
    return {"column": column, "name": name, **extra}


def config_errors(custom_queries: list[Any], queries_file: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config = parse_config({"targets": [{"name": "t", "dsn": DSN}], "custom_queries": custom_queries})
        if queries_file is not None:
            config = config.with_extended_queries(
                ExtendedQueries(queries_file, load_query_file(queries_file))
            )
        resolve_targets(config)
    return caught.value.errors


def file_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "queries.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_query_file(path)
    return [line.removeprefix(f"{path}: ") for line in caught.value.errors]


def backlog_and_bad_name(backlog_keys: str = "") -> str:
    """Queries-file text: `backlog` lists the column depth twice (`backlog_keys` are further lines of it), and
    "bad-name" is no valid metric prefix."""
    return f"""
backlog:
  query: SELECT 1
{backlog_keys}  metrics:
    - depth: {{usage: GAUGE}}
    - depth: {{usage: COUNTER}}
"bad-name":
  query: SELECT 1
"""


def test_custom_query_shape_errors_name_their_key() -> None:
    errors = config_errors(
        [
            {"name": "a", "sqll": "SELECT 1", "metrics": [metric("a_x")]},
            {"name": "Bad-Name", "sql": "SELECT 1", "metrics": [metric("b_x", type="histogram")]},
            {"name": "c", "sql": "SELECT 1", "metrics": []},
            {"name": "d", "sql": "SELECT 1", "metrics": [metric("d_x"), metric("d_x", "other")]},
            {"name": "e", "sql": "SELECT 1", "metrics": [metric("e_x", labels=["datname"])]},
            {"name": "f", "sql": "SELECT 1", "databases": [], "metrics": [metric("f_x")]},
        ]
    )
    assert "custom_queries.0.sqll: unknown key" in errors
    assert "custom_queries.0.sql: Field required" in errors
    assert any(e.startswith("custom_queries.1.name: String should match pattern") for e in errors)
    assert any(
        e.startswith("custom_queries.1.metrics.0.type: Input should be 'gauge' or 'counter'") for e in errors
    )
    assert any(e.startswith("custom_queries.2.metrics: Tuple should have at least 1 item") for e in errors)
    assert "custom_queries.3: metrics: duplicate metric name d_x" in errors
    assert "custom_queries.4.metrics.0: labels: 'datname' is set by the exporter" in errors
    assert "custom_queries.5: databases: list at least one database, or say all" in errors


def test_duplicate_names_across_queries_and_the_builtins(tmp_path: Path) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text("jobs:\n  query: SELECT 1 AS depth\n  metrics: [{depth: {usage: GAUGE}}]\n")
    errors = config_errors(
        [
            {"name": "a", "sql": "SELECT 1", "metrics": [metric("app_x")]},
            {"name": "b", "sql": "SELECT 1", "metrics": [metric("app_x"), metric("pg_up")]},
            {"name": "c", "sql": "SELECT 1", "metrics": [metric("pg_settings_work_mem_bytes")]},
            {"name": "jobs", "sql": "SELECT 1", "metrics": [metric("jobs_depth")]},
        ],
        path,
    )
    assert errors == [
        "custom_queries.1.metrics.0.name: duplicate metric name app_x (also custom_queries.0.metrics.0.name)",
        "custom_queries.1.metrics.1.name: pg_up is a metric of the exporter's own collectors",
        "custom_queries.2.metrics.0.name: pg_settings_work_mem_bytes is a metric of the exporter's own collectors",
        f"custom_queries.3.name: jobs is also defined by {path}: jobs",
        f"custom_queries.3.metrics.0.name: duplicate metric name jobs_depth (also {path}: jobs.metrics.depth)",
    ]


def test_queries_file_errors_name_their_key(tmp_path: Path) -> None:
    errors = file_errors(
        tmp_path,
        """
jobs:
  querry: SELECT 1
  metrics:
    - depth: {usage: gauge}
    - wait: {usage: HISTOGRAM}
    - ok: {usage: GAUGE, descripton: typo}"""
        + backlog_and_bad_name('  runonserver: ">= ten"\n  cache_seconds: -1\n'),
    )
    assert "jobs.querry: unknown key" in errors
    assert "jobs.query: Field required" in errors
    assert any(
        e.startswith("jobs.metrics.0.depth.usage: unknown usage 'gauge': use one of LABEL") for e in errors
    )
    assert any(
        e.startswith("jobs.metrics.1.wait.usage: unknown usage 'HISTOGRAM' (HISTOGRAM is not") for e in errors
    )
    assert "jobs.metrics.2.ok.descripton: unknown key" in errors
    assert any(e.startswith("backlog.runonserver: invalid version comparison '>='") for e in errors)
    assert any(
        e.startswith("backlog.cache_seconds: Input should be greater than or equal to 0") for e in errors
    )
    assert not any(e.startswith("<root>") for e in errors), errors


def test_queries_file_duplicate_columns_and_bad_prefixes(tmp_path: Path) -> None:
    errors = file_errors(tmp_path, backlog_and_bad_name())
    assert errors == [
        "backlog: metrics.1.depth: column listed twice",
        "bad-name.[key]: String should match pattern '^[a-zA-Z_:][a-zA-Z0-9_:]*$'",
    ]
    assert file_errors(tmp_path, "jobs: [1, 2]\n") == [
        "jobs: Input should be a valid dictionary or instance of UserQuery"
    ]
    assert file_errors(tmp_path, "jobs: {query: 'x'\n")[0].startswith("invalid YAML at line")


def test_check_config_lists_the_custom_collectors(tmp_path: Path, pg_server: PostgresServer) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(
        "jobs:\n  query: SELECT 1 AS depth\n  cache_seconds: 30\n  metrics: [{depth: {usage: GAUGE}}]\n"
    )
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"targets: [{{name: t, dsn: '{pg_server.dsn()}'}}]\n"
        "custom_queries:\n"
        "  - {name: queue, sql: SELECT 1 AS n, databases: all, timeout: 2s, metrics: [{column: n, name: q_n}]}\n"
    )
    result = run_cli("--config", str(config), "--extend.query-path", str(path), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "collector custom:jobs: server, ttl 30s, timeout 5s" in result.stdout
    assert "collector custom:queue: per database, ttl 0s, timeout 2s" in result.stdout


def test_a_bad_queries_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text("jobs:\n  query: SELECT 1\n  metrics: [{depth: {usage: gauge}}]\n")
    env = clean_env(DATA_SOURCE_NAME=DSN, PG_EXPORTER_EXTEND_QUERY_PATH=str(path))
    result = run_cli("--check-config", env=env)
    assert result.returncode == 2
    assert f"{path}: jobs.metrics.0.depth.usage: unknown usage 'gauge'" in result.stderr
