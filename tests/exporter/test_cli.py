"""pgwarden-exporter as a user runs it: `python -m exporter ...` in a subprocess, against a real PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.pgserver import PostgresServer, free_port
from exporter import __version__
from tests.support.exporter_process import clean_env, run_cli, running_exporter
from tests.support.postgres import MONITOR_PASSWORD

SECRET = "cli-Secret-pw-7731"
# The --check-config tests' first target, its DSN's password SECRET; a test's text goes on with the target's
# further keys (indented 4) and the rest of the configuration.
PRODUCTION = f"""
targets:
  - name: production
    dsn: postgresql://monitor:{SECRET}@prod.internal:5432/app
"""


def samples(body: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(body) for s in f.samples]


def value_of(body: str, name: str, **labels: str) -> float | None:
    found = [
        v for n, lbl, v in samples(body) if n == name and all(lbl.get(k) == x for k, x in labels.items())
    ]
    assert len(found) <= 1, f"{name}{labels}: {len(found)} series"
    return found[0] if found else None


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.yml"
    path.write_text(text)
    return path


# --- flags -------------------------------------------------------------------------------------------------


def test_help_mentions_zero_config_and_the_flags() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("DATA_SOURCE_NAME", "--config", "--web.listen-address", "--log.format", "--check-config"):
        assert text in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"pgwarden-exporter {__version__}"


def test_unknown_flag_is_an_error() -> None:
    result = run_cli("--web.listen-adress", ":9187")
    assert result.returncode != 0
    assert "unrecognized arguments: --web.listen-adress" in result.stderr


def test_bad_log_format_is_an_error() -> None:
    result = run_cli("--log.format", "xml")
    assert result.returncode != 0
    assert "--log.format" in result.stderr


# --- --check-config ----------------------------------------------------------------------------------------


def test_check_config_good_prints_a_summary(tmp_path: Path) -> None:
    dsn_file = tmp_path / "reporting.dsn"
    dsn_file.write_text(f"host=reports.internal port=5434 dbname=reports user=r password={SECRET}\n")
    config = write_config(
        tmp_path,
        PRODUCTION
        + f"""\
    rds: {{identifier: prod-db, region: us-east-1, backup_regions: [eu-west-1]}}
  - name: staging
    dsn_env: PGW_TEST_STAGING_DSN
  - name: reporting
    dsn_file: {dsn_file}
collectors:
  defaults: {{timeout: 5s, ttl: 0s}}
  bloat: {{ttl: 10m}}
limits: {{statements_top_n: 50, tables_per_database: 0}}
""",
    )
    env = clean_env(PGW_TEST_STAGING_DSN=f"postgresql://u:{SECRET}@staging.internal:6432/app")
    result = run_cli("--config", str(config), "--check-config", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("configuration OK: 3 target(s)")
    assert "target production: prod.internal:5432/app" in out
    assert "target staging: staging.internal:6432/app" in out
    assert "target reporting: reports.internal:5434/reports" in out
    assert "collector activity: server" in out
    assert "collector bloat:" in out and "ttl 10m" in out
    assert "statements_top_n=50" in out and "tables_per_database=0" in out
    # production's rds: without an aws: section: polled with the default settings, and said so
    assert "aws: no aws: section; the targets' rds: blocks are polled with the default aws: settings" in out
    assert "aws: 1 account/region unit(s): default/us-east-1" in out
    assert SECRET not in out + result.stderr


def test_check_config_zero_config(tmp_path: Path) -> None:
    env = clean_env(
        DATA_SOURCE_NAME=f"postgresql://monitor:{SECRET}@db1:5432/postgres,host=db2 password={SECRET}"
    )
    result = run_cli("--check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK: 2 target(s)")
    assert "db1:5432/postgres" in result.stdout and "db2:5432/postgres" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_check_config_bad_names_every_bad_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        PRODUCTION
        + """\
    dsnn: typo
collectors:
  activty: {long_running_thresholds: [60]}
limits: {statements_top_n: -1}
""",
    )
    result = run_cli("--config", str(config), "--check-config")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "targets.0.dsnn: unknown key" in result.stderr
    assert "collectors.activty: unknown key" in result.stderr
    assert "limits.statements_top_n:" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_unset_dsn_env_names_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "targets:\n  - {name: a, dsn_env: PGW_TEST_UNSET_DSN}\n")
    result = run_cli("--config", str(config), "--check-config")
    assert result.returncode != 0
    assert "targets.0.dsn_env" in result.stderr and "PGW_TEST_UNSET_DSN" in result.stderr


def test_nothing_configured_names_data_source_name() -> None:
    result = run_cli("--check-config")
    assert result.returncode != 0
    assert "DATA_SOURCE_NAME" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    result = run_cli("--config", str(path), "--check-config")
    assert result.returncode != 0
    assert str(path) in result.stderr and "Traceback" not in result.stderr


def test_invalid_yaml_error_does_not_print_the_dsn_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"targets:\n  - name: a\n    dsn: host=h password={SECRET}: x\n")
    result = run_cli("--config", str(config), "--check-config")
    assert result.returncode != 0 and "invalid YAML" in result.stderr
    assert SECRET not in result.stderr


def test_check_config_empty_dsn_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'targets:\n  - {name: a, dsn: ""}\n')
    result = run_cli("--config", str(config), "--check-config")
    assert result.returncode == 2
    assert "targets.0.dsn" in result.stderr and "Traceback" not in result.stderr


# --- --web.listen-address ----------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:http", "127.0.0.1:-1"])
def test_bad_listen_address_exits_with_a_clear_message(address: str) -> None:
    result = run_cli("--web.listen-address", address, env=clean_env(DATA_SOURCE_NAME="postgresql://u@h/d"))
    assert result.returncode != 0
    assert "--web.listen-address" in result.stderr and repr(address) in result.stderr
    assert "Traceback" not in result.stderr


def test_out_of_range_port_exits_with_a_clear_message() -> None:
    result = run_cli(
        "--web.listen-address", "127.0.0.1:99999", env=clean_env(DATA_SOURCE_NAME="postgresql://u@h/d")
    )
    assert result.returncode != 0
    assert "--web.listen-address" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_exits_with_a_clear_message() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "--web.listen-address", f"127.0.0.1:{port}", env=clean_env(DATA_SOURCE_NAME="postgresql://u@h/d")
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


# --- running for real --------------------------------------------------------------------------------------


def test_serves_a_real_server_and_stops_on_sigterm(tmp_path: Path, monitor_dsn: str) -> None:
    with running_exporter(tmp_path, env=clean_env(DATA_SOURCE_NAME=monitor_dsn)) as exporter:
        status, ctype, body = exporter.get("/healthz")
        assert status == 200 and ctype.startswith("application/json")
        health = json.loads(body)
        assert health["status"] == "ok" and health["targets"] == 1

        status, ctype, body = exporter.get("/metrics")
        assert status == 200, body
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
        assert value_of(body, "pg_up") == 1
        assert value_of(body, "pg_scrape_collector_success", collector="activity") == 1
        rss = value_of(body, "process_resident_memory_bytes")
        assert rss is not None and rss > 0
        assert "pg_up 1" in body.splitlines()
        assert "target=" not in body  # one target: no target label

        assert exporter.stop() == 0
        assert MONITOR_PASSWORD not in exporter.stderr()


def test_json_logs_are_one_json_object_per_line(tmp_path: Path, monitor_dsn: str) -> None:
    args = ("--log.format", "json", "--log.level", "debug")
    with running_exporter(tmp_path, *args, env=clean_env(DATA_SOURCE_NAME=monitor_dsn)) as exporter:
        assert exporter.get("/metrics")[0] == 200
        assert exporter.get("/probe?target=nope")[0] == 404
        assert exporter.stop() == 0
    lines = exporter.stderr().splitlines()
    assert lines, "the exporter logged nothing"
    for line in lines:
        event = json.loads(line)
        assert isinstance(event, dict) and {"ts", "level", "msg"} <= event.keys(), line
    assert any(json.loads(line)["msg"] == "listening" for line in lines)
    assert MONITOR_PASSWORD not in exporter.stderr()


def test_unreachable_and_wrongly_authenticated_servers_are_down_and_secrets_stay_out_of_logs(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    config = write_config(
        tmp_path,
        """
targets:
  - {name: wrong_password, dsn_env: PGW_TEST_WRONG_DSN, connect_timeout: 1s}
  - {name: nobody_listens, dsn_env: PGW_TEST_CLOSED_DSN, connect_timeout: 1s}
""",
    )
    env = clean_env(
        PGW_TEST_WRONG_DSN=f"postgresql://postgres:{SECRET}-wrong@127.0.0.1:{pg_server.port}/postgres",
        PGW_TEST_CLOSED_DSN=f"postgresql://postgres:{SECRET}-closed@127.0.0.1:{free_port()}/postgres",
    )
    with running_exporter(tmp_path, "--config", str(config), "--log.level", "debug", env=env) as exporter:
        started = time.monotonic()
        status, _, body = exporter.get("/metrics")
        assert time.monotonic() - started < 2.5  # the 1 s connect timeout plus slack: never a hung scrape
        assert status == 200
        assert value_of(body, "pg_up", target="wrong_password") == 0
        assert value_of(body, "pg_up", target="nobody_listens") == 0
        assert SECRET not in body
        assert exporter.stop() == 0
    assert "wrong_password" in exporter.stderr()  # the failure is logged ...
    assert SECRET not in exporter.stderr()  # ... without the password
