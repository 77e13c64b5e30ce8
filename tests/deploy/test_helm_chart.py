"""The Helm chart prometheus-postgres-exporter, proven without a cluster: pgwarden's image in its place.

The chart's container `args` and `env` and its ServiceMonitor's multi-target `/probe` parameters are rendered
from copies of its templates (tests/fixtures/postgres_exporter/helm, sources named there) for its default
values and for the values users set most; pgwarden-exporter is started through the image's entrypoint with
exactly those arguments and that environment (secretKeyRef values looked up as the kubelet would, the
configmap mounted at /etc/postgres_exporter.yml stood for by a file of the test's), and must answer the chart's
liveness probe (`/`), serve `pg_up 1` on /metrics and through the ServiceMonitor's /probe parameters.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.pgserver import PostgresServer
from devtools.processes import NotReady, free_port, spawn, wait_http
from tests.deploy.gotemplate import Renderer
from tests.deploy.test_compose import dockerfile_stages, last, resolve
from tests.support.exporter import Samples
from tests.support.exporter_process import clean_env
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "tests" / "fixtures" / "postgres_exporter" / "helm"
ENTRYPOINT = REPO / "deploy" / "docker-entrypoint.sh"
MOUNTED_CONFIG = "/etc/postgres_exporter.yml"  # where the chart mounts config.postgresExporter
RELEASE = "pgwarden"
# The release's secret of config.datasource.password (templates/secrets.yaml) is named by the fullname helper;
# for release "pgwarden" that is the name below.
FULLNAME = f'{{{{- define "prometheus-postgres-exporter.fullname" -}}}}{RELEASE}-prometheus-postgres-exporter{{{{- end }}}}'


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def renderer(values: dict[str, Any]) -> Renderer:
    return Renderer(values, (CHART / "data-source-uri.tpl").read_text(), FULLNAME)


def render_container(values: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = yaml.safe_load(
        renderer(values).render((CHART / "deployment-container.tpl").read_text())
    )
    return rendered


def render_probe_params(values: dict[str, Any], target: dict[str, Any]) -> dict[str, list[str]]:
    text = renderer(values).render((CHART / "servicemonitor-multiple-target.tpl").read_text(), dict(target))
    # `$` is the root even inside the range: the renderer reads `$.Values` from its root
    (endpoint,) = yaml.safe_load(text)
    assert endpoint["path"] == "/probe"
    params: dict[str, list[str]] = endpoint["params"]
    return params


@dataclass
class Case:
    values: dict[str, Any]
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (secret, key) -> value
    files: dict[str, str] = field(default_factory=dict)  # mounted path (a values path) -> contents
    config_file: str | None = None  # config.postgresExporter's contents, mounted at MOUNTED_CONFIG
    absent: tuple[str, ...] = ()  # family names (or prefixes ending in _) the values turn off
    present: tuple[str, ...] = ("pg_stat_database_xact_commit", "pg_stat_activity_count")


def cases(tmp: Path) -> dict[str, Case]:
    auth_modules = {
        "auth_modules": {
            "client.pg01": {
                "type": "userpass",
                "userpass": {"username": MONITOR_ROLE, "password": MONITOR_PASSWORD},
                "options": {"sslmode": "disable"},
            }
        }
    }
    password_secret = {("pg-credentials", "password"): MONITOR_PASSWORD}
    return {
        "defaults": Case(
            {"config": {"datasource": {"user": MONITOR_ROLE, "password": MONITOR_PASSWORD}}},
            {(f"{RELEASE}-prometheus-postgres-exporter", "data_source_password"): MONITOR_PASSWORD},
            present=(
                "pg_static",
                "pg_settings_max_connections",
                "pg_stat_bgwriter_buffers_alloc_total",
                "pg_database_size_bytes",
                "pg_stat_database_xact_commit",
            ),
        ),
        "disabled": Case(
            {
                "config": {
                    "datasource": {
                        "user": MONITOR_ROLE,
                        "passwordSecret": {"name": "pg-credentials", "key": "password"},
                    },
                    "disableDefaultMetrics": True,
                    "disableSettingsMetrics": True,
                    "disableCollectorDatabase": True,
                    "disableCollectorBgwriter": True,
                }
            },
            password_secret,
            absent=(
                "pg_static",
                "pg_settings_",
                "pg_database_size_bytes",
                "pg_database_connection_limit",
                "pg_stat_bgwriter_",
                "pg_stat_database_conflicts_",
            ),
        ),
        "logs_and_extra_args": Case(
            {
                "config": {
                    "datasource": {
                        "user": MONITOR_ROLE,
                        "passwordSecret": {"name": "pg-credentials", "key": "password"},
                    },
                    "logFormat": "json",
                    "logLevel": "debug",
                    "extraArgs": [
                        "--auto-discover-databases",
                        "--exclude-databases=template1,helm_excluded",
                        "--no-collector.stat_statements",
                    ],
                }
            },
            password_secret,
            absent=("pg_stat_statements_",),
        ),
        "files_and_auth_modules": Case(
            {
                "config": {
                    "datasource": {
                        "userFile": str(tmp / "secrets/user"),
                        "passwordFile": str(tmp / "secrets/pass"),
                    },
                    "postgresExporter": yaml.safe_dump(auth_modules),
                },
                "serviceMonitor": {"enabled": True, "multipleTarget": {"enabled": True}},
            },
            files={
                str(tmp / "secrets/user"): MONITOR_ROLE + "\n",
                str(tmp / "secrets/pass"): MONITOR_PASSWORD + "\n",
            },
            config_file=yaml.safe_dump(auth_modules),
        ),
        "datasource_secret": Case(
            {"config": {"datasourceSecret": {"name": "pg-dsn", "key": "dsn"}}},
            {("pg-dsn", "dsn"): "__DSN__"},
        ),
    }


@pytest.fixture
def exporter_on_path(tmp_path: Path) -> Path:
    """A directory whose `pgwarden-exporter` is this tree's console script (the image has the installed one)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pgwarden-exporter"
    script.write_text(
        f'#!/bin/sh\nexec {sys.executable} -c "from exporter.cli import main; raise SystemExit(main())" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def container_env(rendered: dict[str, Any], case: Case, dsn: str) -> dict[str, str]:
    env = {}
    for item in rendered["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = case.secrets[(ref["name"], ref["key"])].replace("__DSN__", dsn)
    return env


@pytest.mark.parametrize(
    "name", ["defaults", "disabled", "logs_and_extra_args", "files_and_auth_modules", "datasource_secret"]
)
def test_the_chart_runs_pgwarden(
    name: str, tmp_path: Path, pg_server: PostgresServer, monitor_dsn: str, exporter_on_path: Path
) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    case = cases(tmp_path)[name]
    port = free_port()
    # the server the test runs: the values a user gives for theirs (host, port, database)
    site = {
        "config": {"datasource": {"host": "127.0.0.1", "port": str(pg_server.port), "database": "postgres"}}
    }
    values = merged(merged(merged(defaults, site), case.values), {"service": {"targetPort": port}})
    pg_server.execute("DROP DATABASE IF EXISTS helm_excluded")
    pg_server.execute("CREATE DATABASE helm_excluded")  # excluded by the extraArgs of logs_and_extra_args
    rendered = render_container(values)
    args = [str(a) for a in rendered["args"]]
    assert args[:2] == [f"--config.file={MOUNTED_CONFIG}", f"--web.listen-address=:{port}"]
    env = container_env(rendered, case, monitor_dsn)
    for path, text in case.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    mounted = tmp_path / "etc" / "postgres_exporter.yml"  # the configmap's volume, when the chart mounts one
    if case.config_file is not None:
        mounted.parent.mkdir()
        mounted.write_text(case.config_file)
    argv = ["sh", str(ENTRYPOINT), *(a.replace(MOUNTED_CONFIG, str(mounted)) for a in args)]
    process_env = clean_env(
        **env, PATH=f"{exporter_on_path}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO)
    )
    log = tmp_path / "exporter.log"
    process = spawn("exporter", argv, log, process_env, REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(process, url + "/", 20)  # the chart's liveness and readiness probes
        except NotReady as exc:
            pytest.fail(f"{exc}\n{log.read_text()}")
        samples = Samples(get(url + "/metrics"))
        if "serviceMonitor" in case.values:
            target = {
                "endpoint": "127.0.0.1",
                "port": pg_server.port,
                "name": "pg01",
                "databaseName": "postgres",
            }
            params = render_probe_params(values, target)
            assert params == {
                "target": [f"127.0.0.1:{pg_server.port}/postgres"],
                "auth_module": ["client.pg01"],
            }
            probed = Samples(get(url + "/probe?" + urllib.parse.urlencode(params, doseq=True)))
            assert (
                probed.get("pg_up") == 1
                and probed.get("pg_stat_database_numbackends", datname="postgres") is not None
            )
    finally:
        process.stop()
        pg_server.execute("DROP DATABASE helm_excluded")
    stderr = log.read_text()
    assert samples.get("pg_up") == 1, stderr
    names = samples.names()
    for family in case.present:
        assert family in names, (name, family)
    for family in case.absent:
        assert not [n for n in names if n == family or (family.endswith("_") and n.startswith(family))], (
            family
        )
    assert MONITOR_PASSWORD not in stderr
    if name == "logs_and_extra_args":
        assert all(isinstance(json.loads(line), dict) for line in stderr.splitlines())
        visited = {lbl["datname"] for lbl, _ in samples.all("pg_scrape_collector_database_success")}
        assert "postgres" in visited and "helm_excluded" not in visited
    if name == "disabled":
        assert "--no-collector.settings" in stderr  # the removed flag's warning names its replacement


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def test_the_image_runs_as_the_chart_expects() -> None:
    """Non-root, port 9187, flags alone run the exporter (the chart sets `args`, not `command`)."""
    stages = dockerfile_stages()
    runtime = resolve(stages, stages[-1].name)
    user = last(runtime, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0")
    assert "9187" in (last(runtime, "EXPOSE") or "").split()
    entrypoint = json.loads(last(runtime, "ENTRYPOINT") or "[]")
    copies = [rest for stage in runtime for kw, rest in stage.instructions if kw == "COPY"]
    assert any(
        c.split()[-1] == f"/usr/local/bin/{entrypoint[0]}" and "deploy/docker-entrypoint.sh" in c
        for c in copies
    )
    assert "deploy/docker-entrypoint.sh" in (REPO / ".dockerignore").read_text()


@pytest.mark.parametrize(
    ("argv", "program"),
    [(["--version"], "pgwarden-exporter"), (["pgwarden-responder", "--version"], "pgwarden-responder")],
)
def test_the_entrypoint_runs_the_exporter_for_flags_and_any_command_else(
    argv: list[str], program: str, exporter_on_path: Path
) -> None:
    responder = exporter_on_path / "pgwarden-responder"
    responder.write_text(f'#!/bin/sh\nexec {sys.executable} -m responder "$@"\n')
    responder.chmod(0o755)
    env = clean_env(PATH=f"{exporter_on_path}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *argv], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().startswith(f"{program} ")
