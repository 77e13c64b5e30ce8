"""postgres_exporter's flags and PG_EXPORTER_* variables: each one parsed and acting, on a real exporter."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devtools.pgserver import PostgresServer
from exporter.cli import parse_args
from exporter.collectors.registry import COLLECTORS
from exporter.config import ConfigError, parse_config
from exporter.flags import UpstreamFlags, apply_flags, read_flags
from exporter.upstream_collectors import BY_NAME, UPSTREAM_COLLECTORS, UpstreamCollector
from tests.support.exporter import Samples, Scraper
from tests.support.exporter_process import REPO, clean_env, run_cli, running_exporter

TARGET = {"targets": [{"name": "a", "dsn": "postgresql://u@h/db"}]}


def flags(*argv: str, **env: str) -> UpstreamFlags:
    return read_flags(parse_args(list(argv)), env)


def families_of(upstream: str) -> set[str]:
    return {
        name
        for part in next(u for u in UPSTREAM_COLLECTORS if u.name == upstream).parts
        for name in part.names()
    }


def test_every_mapped_collector_and_family_exists() -> None:
    for upstream in UPSTREAM_COLLECTORS:
        for part in upstream.parts:
            assert part.collector in BY_NAME, (upstream.name, part.collector)
            declared = {f.name for f in BY_NAME[part.collector].families}
            assert set(part.names()) <= declared, upstream.name
        assert upstream.parts or upstream.note, upstream.name
    # no family is two postgres_exporter collectors' (a flag would turn the other one's off)
    owned = [name for u in UPSTREAM_COLLECTORS for name in families_of(u.name)]
    assert len(owned) == len(set(owned))


@pytest.mark.parametrize("upstream", [u for u in UPSTREAM_COLLECTORS if u.parts], ids=lambda u: u.name)
def test_no_collector_flag_leaves_out_its_families(upstream: UpstreamCollector) -> None:
    name = upstream.name
    config = apply_flags(parse_config(TARGET), flags(f"--no-collector.{name}"))
    for part in upstream.parts:
        options = config.collectors.options(part.collector)
        every = {f.name for f in BY_NAME[part.collector].families}
        if set(part.names()) == every:
            assert not options.enabled, name
        else:
            assert options.enabled and set(part.names()) <= set(options.exclude_families), name
            assert not every - set(part.names()) <= set(options.exclude_families), name
    others = [c.name for c in COLLECTORS if c.name not in {p.collector for p in upstream.parts}]
    assert all(config.collectors.options(c).enabled for c in others if c not in _OFF_BY_DEFAULT)


_OFF_BY_DEFAULT = {c.name for c in COLLECTORS if not c.options_model().enabled}


def test_collector_flag_turns_on_a_collector_off_by_default() -> None:
    off = [u for u in UPSTREAM_COLLECTORS if u.parts and u.parts[0].collector in _OFF_BY_DEFAULT]
    for upstream in off:
        config = apply_flags(parse_config(TARGET), flags(f"--collector.{upstream.name}"))
        assert config.collectors.options(upstream.parts[0].collector).enabled, upstream.name


def test_statements_options_and_database_lists() -> None:
    got = flags(
        "--collector.stat_statements.include_query",
        "--collector.stat_statements.query_length=40",
        "--collector.stat_statements.limit=7",
        "--collector.stat_statements.exclude_databases=a, b",
        "--collector.stat_statements.exclude_users=rdsadmin",
        "--collector.long_running_transactions.threshold=2m",
        "--exclude-databases=x,y",
        "--collection-timeout=30s",
        PG_EXPORTER_INCLUDE_DATABASES="app",
    )
    config = apply_flags(parse_config(TARGET), got)
    statements = config.collectors.options("statements")
    assert getattr(statements, "include_query") and getattr(statements, "query_max_length") == 40  # noqa: B009
    assert getattr(statements, "exclude_databases") == ("a", "b")  # noqa: B009
    assert getattr(statements, "exclude_users") == ("rdsadmin",)  # noqa: B009
    assert config.limits.statements_top_n == 7
    assert getattr(config.collectors.options("long_running_transactions"), "threshold") == 120  # noqa: B009
    assert config.collectors.defaults.timeout == 30
    assert config.targets[0].databases.exclude == ("x", "y") and config.targets[0].databases.include == (
        "app",
    )


def test_the_flag_wins_over_its_variable_and_bad_values_are_named() -> None:
    assert flags("--web.telemetry-path=/a", PG_EXPORTER_WEB_TELEMETRY_PATH="/b").telemetry_path == "/a"
    assert flags(PG_EXPORTER_WEB_TELEMETRY_PATH="/b").telemetry_path == "/b"
    assert flags(PG_EXPORTER_DISABLE_DEFAULT_METRICS="true").disable_default_metrics
    assert flags(PG_EXPORTER_CONSTANT_LABELS="a=1, b=2,bad").constant_labels == {"a": "1", "b": "2"}
    with pytest.raises(ConfigError) as caught:
        flags(PG_EXPORTER_DISABLE_DEFAULT_METRICS="maybe", PG_EXPORTER_COLLECTION_TIMEOUT="soon")
    assert any("PG_EXPORTER_DISABLE_DEFAULT_METRICS" in e for e in caught.value.errors)
    assert any("PG_EXPORTER_COLLECTION_TIMEOUT" in e for e in caught.value.errors)
    with pytest.raises(SystemExit):
        parse_args(["--collector.stat_statements.limit=0"])
    removed = flags("--disable-settings-metrics")
    assert any("--no-collector.settings" in w for w in removed.warnings)
    assert not apply_flags(parse_config(TARGET), removed).collectors.options("settings").enabled


def test_every_variable_and_flag_form_kingpin_accepts() -> None:
    """Each PG_EXPORTER_* variable is read, its flag wins over it, a boolean one is read as Go's
    strconv.ParseBool reads it, and every boolean flag has its `--no-` form (kingpin gives one to each)."""
    assert flags(PG_EXPORTER_METRIC_PREFIX="acme").metric_prefix == "acme"
    assert flags("--metric-prefix=mine", PG_EXPORTER_METRIC_PREFIX="acme").metric_prefix == "mine"
    assert flags("--include-databases=a, b", PG_EXPORTER_INCLUDE_DATABASES="c").include_databases == (
        "a",
        "b",
    )
    assert flags("--exclude-databases=x", PG_EXPORTER_EXCLUDE_DATABASES="y").exclude_databases == ("x",)
    assert flags("--constantLabels=a=1", PG_EXPORTER_CONSTANT_LABELS="b=2").constant_labels == {"a": "1"}
    assert flags("--collection-timeout=5s", PG_EXPORTER_COLLECTION_TIMEOUT="9s").collection_timeout == 5
    assert flags(PG_EXPORTER_COLLECTION_TIMEOUT="9s").collection_timeout == 9
    for text in ("1", "t", "T", "TRUE", "true", "True"):
        got = flags(
            PG_EXPORTER_AUTO_DISCOVER_DATABASES=text,
            PG_EXPORTER_DISABLE_DEFAULT_METRICS=text,
            PG_EXPORTER_DISABLE_SETTINGS_METRICS=text,
        )
        assert got.auto_discover_databases and got.disable_default_metrics, text
        assert got.disable_settings_metrics, text
    for text in ("", "0", "f", "F", "FALSE", "false", "False"):
        got = flags(PG_EXPORTER_AUTO_DISCOVER_DATABASES=text, PG_EXPORTER_DISABLE_DEFAULT_METRICS=text)
        assert not got.auto_discover_databases and not got.disable_default_metrics, text
    with pytest.raises(ConfigError) as caught:
        flags(PG_EXPORTER_AUTO_DISCOVER_DATABASES="yes")
    assert caught.value.errors == [
        "PG_EXPORTER_AUTO_DISCOVER_DATABASES: 'yes' is not a boolean (true or false)"
    ]
    on = {
        "PG_EXPORTER_AUTO_DISCOVER_DATABASES": "true",
        "PG_EXPORTER_DISABLE_DEFAULT_METRICS": "true",
        "PG_EXPORTER_DISABLE_SETTINGS_METRICS": "true",
    }
    negated = flags(
        "--no-auto-discover-databases",
        "--no-disable-default-metrics",
        "--no-disable-settings-metrics",
        "--no-web.systemd-socket",
        "--no-dumpmaps",
        "--no-wrap-large-counters",
        "--no-collector.stat_statements.include_query",
        **on,
    )
    assert not negated.auto_discover_databases and not negated.disable_default_metrics
    assert not negated.disable_settings_metrics and not negated.systemd_socket and not negated.dumpmaps
    assert negated.statements == {"include_query": False}
    given = flags(
        "--auto-discover-databases", "--disable-default-metrics", "--web.systemd-socket", "--dumpmaps"
    )
    assert given.auto_discover_databases and given.disable_default_metrics
    assert given.systemd_socket and given.dumpmaps


def test_unknown_or_abbreviated_flags_are_errors_naming_them() -> None:
    for flag in ("--collector.nosuch", "--collector.stat_statement", "--no-collector.replication_slot"):
        result = run_cli(flag)
        assert result.returncode == 2, flag
        assert f"unrecognized arguments: {flag}" in result.stderr, result.stderr
    assert isinstance(parse_args(["--config.file=x.yml"]), argparse.Namespace)


def test_dumpmaps_prints_the_families_and_exits() -> None:
    result = run_cli("--dumpmaps")
    assert result.returncode == 0, result.stderr
    assert "pg_stat_activity_count" in result.stdout and "replication_slots" in result.stdout


def test_flags_act_on_a_running_exporter(tmp_path: Path, monitor_dsn: str) -> None:
    """The Helm chart's and the usual flags: the collectors turned off are absent, the rest served."""
    args = (
        "--no-collector.stat_bgwriter",
        "--no-collector.database",
        "--no-collector.stat_replication",
        "--disable-default-metrics",
        "--web.telemetry-path=/pgmetrics",
        "--config.file=/nonexistent/postgres_exporter.yml",
        "--log.format=json",
    )
    env = clean_env(
        DATA_SOURCE_NAME=monitor_dsn,
        PG_EXPORTER_DISABLE_SETTINGS_METRICS="true",
        PG_EXPORTER_CONSTANT_LABELS="cluster=main",
        PG_EXPORTER_EXCLUDE_DATABASES="postgres",
    )
    with running_exporter(tmp_path, *args, env=env) as exporter:
        assert exporter.get("/metrics")[0] == 404
        status, _, body = exporter.get("/pgmetrics")
        stderr = exporter.stderr()
    assert status == 200
    samples = Samples(body)
    assert samples.get("pg_up", cluster="main") == 1
    names = samples.names()
    gone = families_of("stat_bgwriter") | families_of("database") | families_of("stat_replication")
    assert not names & gone
    assert "pg_static" not in names and not [
        n for n in names if n.startswith(("pg_settings_", "pg_stat_database_conflicts_"))
    ]
    assert "pg_stat_database_xact_commit" in names and "pg_postmaster_start_time_seconds" in names
    assert all(
        labels.get("cluster") == "main" for name, labels, _ in samples.samples if name.startswith("pg_")
    )
    assert "postgres" not in {
        lbl.get("datname") for lbl, _ in samples.all("pg_scrape_collector_database_success")
    }
    assert "--no-collector.settings" in stderr and "does not exist" in stderr
    # the missing --config.file, as postgres_exporter has it: served on, its reload gauge at 0
    assert samples.get("postgres_exporter_config_last_reload_successful") == 0


def test_systemd_socket_activation(tmp_path: Path, monitor_dsn: str) -> None:
    """--web.systemd-socket serves on the socket systemd passes as descriptor 3 (LISTEN_PID, LISTEN_FDS)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # as systemd does: the socket as descriptor 3, LISTEN_PID naming the process that execs the exporter
    wrapper = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.environ['LISTEN_FDS'] = '1'; os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
    )
    log = (tmp_path / "exporter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", wrapper, str(fd), "-m", "exporter", "--web.systemd-socket"],
        pass_fds=(fd,), env=clean_env(DATA_SOURCE_NAME=monitor_dsn), cwd=REPO, stdout=log, stderr=log,
    )  # fmt: skip
    listener.close()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "exporter.log"
                ).read_text()
                time.sleep(0.2)
        assert Samples(body).get("pg_up") == 1
    finally:
        proc.terminate()
        proc.wait(10)
    assert run_cli("--web.systemd-socket", env=clean_env(DATA_SOURCE_NAME=monitor_dsn)).returncode == 1


def test_metric_prefix_renames_the_queries_file_namespaces(tmp_path: Path, monitor_dsn: str) -> None:
    """postgres_exporter replaces the first `pg` of each queries.yaml namespace with --metric-prefix."""
    queries = tmp_path / "queries.yaml"
    queries.write_text(
        "pg_custom:\n  query: SELECT 1 AS one\n  metrics:\n    - one: {usage: GAUGE, description: One}\n"
    )
    args = ("--extend.query-path", str(queries), "--metric-prefix", "acme")
    with running_exporter(tmp_path, *args, env=clean_env(DATA_SOURCE_NAME=monitor_dsn)) as exporter:
        samples = Samples(exporter.get("/metrics")[2])
    assert (
        samples.get("acme_custom_one", server=f"127.0.0.1:{monitor_dsn.rsplit(':', 1)[1].split('/')[0]}") == 1
    )
    assert "pg_custom_one" not in samples.names() and samples.get("pg_up") == 1


def _of_families(names: set[str], families: set[str]) -> set[str]:
    """The sample names that belong to `families` (a histogram's by suffix, `pg_settings_<name>` by prefix)."""
    prefixes = tuple(f.split("<", 1)[0] for f in families if "<" in f)
    exact = {f + suffix for f in families for suffix in ("", "_bucket", "_count", "_sum")}
    return {n for n in names if n in exact or (prefixes and n.startswith(prefixes))}


# families whose series come and go between two scrapes of an idle server (a worker or a backend in a state)
_TRANSIENT = {
    "pg_process_idle_seconds",  # idle backends: the exporter's own connections come and go
    "pg_xmin_horizon_age_seconds",  # a transaction holding back the horizon, at that moment
    "pg_stat_activity_autovacuum_timestamp_seconds",
    *families_of("stat_progress_vacuum"),
}


async def test_each_no_collector_flag_leaves_its_families_out_of_a_scrape(
    monitor_dsn: str, pg_server: PostgresServer, databases: tuple[str, str]
) -> None:
    """Every `--no-collector.<name>`, on a real scrape with every collector on: none of its families is
    served, and the other collectors' still are."""
    every = {c.name: {"enabled": True} for c in COLLECTORS}
    base = {"targets": [{"name": "a", "dsn": monitor_dsn}], "collectors": every}
    pg_server.execute("SELECT pg_create_physical_replication_slot('flags_slot', true)")
    try:
        scraper = Scraper(parse_config(base))
        try:
            baseline = await scraper.scrape()
        finally:
            await scraper.close()
        assert baseline.get("pg_up") == 1
        served = 0
        for upstream in (u for u in UPSTREAM_COLLECTORS if u.parts):
            scraper = Scraper(apply_flags(parse_config(base), flags(f"--no-collector.{upstream.name}")))
            try:
                samples = await scraper.scrape()
            finally:
                await scraper.close()
            own = families_of(upstream.name)
            assert samples.get("pg_up") == 1, upstream.name
            assert not _of_families(samples.names(), own), upstream.name
            others = {f.name for c in COLLECTORS for f in c.families} - own
            steady = _of_families(baseline.names(), others - _TRANSIENT)
            assert steady <= samples.names(), (upstream.name, sorted(steady - samples.names()))
            served += bool(_of_families(baseline.names(), own))
        assert served >= 18  # most have series on the test server, so that their absence is seen
    finally:
        pg_server.execute("SELECT pg_drop_replication_slot('flags_slot')")
