"""The exporter behind --web.config.file: a real Prometheus scrapes it over TLS with basic auth, and with a
client certificate; the wrong password and the missing certificate leave their jobs down."""

from __future__ import annotations

import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.processes import Process, free_port, spawn, wait_http, wait_tcp
from devtools.services import ServiceUnavailable, binary
from tests.pgwarden.certs import Certificates, bcrypt_hash, make_certificates
from tests.support.exporter_process import clean_env, run_cli
from tests.support.services import missing_service

PASSWORD = "prometheus-scrape-pw"
SCRAPE_WAIT = 60.0  # a bound for waiting, never asserted on


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def web_config(folder: Path, name: str, document: dict[str, Any]) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def exporter_config(folder: Path, dsn: str) -> Path:
    path = folder / "exporter.yml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "main", "dsn": dsn}]}))
    return path


def start_exporter(folder: Path, config: Path, web: Path) -> tuple[Process, int]:
    port = free_port()
    argv = [
        *(sys.executable, "-m", "exporter", "--config", str(config), "--web.config.file", str(web)),
        *("--web.listen-address", f"127.0.0.1:{port}"),
    ]
    process = spawn(f"exporter {web.stem}", argv, folder / f"{web.stem}.log", clean_env())
    wait_tcp(process, port)
    return process, port


def fetch(url: str, context: ssl.SSLContext, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    status, _, body = fetch_with_headers(url, context, auth)
    return status, body


def fetch_with_headers(
    url: str, context: ssl.SSLContext, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def exporters(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates, monitor_dsn: str
) -> Iterator[dict[str, int]]:
    """Two exporters on https: `basic` wants basic auth, `mtls` a client certificate of the test CA."""
    folder = tmp_path_factory.mktemp("exporters")
    config = exporter_config(folder, monitor_dsn)
    server = {"cert_file": str(certs.server_cert), "key_file": str(certs.server_key)}
    basic = web_config(
        folder,
        "basic",
        {
            "tls_server_config": server,
            "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD, cost=10)},
            "http_server_config": {"headers": {"Strict-Transport-Security": "max-age=31536000"}},
        },
    )
    mtls = web_config(
        folder,
        "mtls",
        {
            "tls_server_config": {
                **server,
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": str(certs.ca),
            }
        },
    )
    started: list[Process] = []
    try:
        ports = {}
        for name, web in (("basic", basic), ("mtls", mtls)):
            process, ports[name] = start_exporter(folder, config, web)
            started.append(process)
        yield ports
    finally:
        for process in started:
            process.stop()


def test_basic_auth_over_tls(exporters: dict[str, int], certs: Certificates) -> None:
    url = f"https://127.0.0.1:{exporters['basic']}/metrics"
    context = certs.client_context()
    assert fetch(url, context)[0] == 401
    assert fetch(url, context, ("prometheus", "wrong"))[0] == 401
    status, headers, body = fetch_with_headers(url, context, ("prometheus", PASSWORD))
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"  # on the streamed exposition too
    assert "\npg_up 1.0\n" in body or "\npg_up 1\n" in body
    with pytest.raises(OSError):  # plain HTTP is not served
        urllib.request.urlopen(f"http://127.0.0.1:{exporters['basic']}/metrics", timeout=10)


def test_client_certificate_required(exporters: dict[str, int], certs: Certificates) -> None:
    url = f"https://127.0.0.1:{exporters['mtls']}/healthz"
    with pytest.raises(OSError):  # the handshake fails: ssl.SSLError, URLError or a reset
        fetch(url, certs.client_context())
    status, body = fetch(url, certs.client_context(with_client_cert=True))
    assert status == 200 and json.loads(body)["status"] == "ok"


def start_prometheus(folder: Path, scrape_configs: list[dict[str, Any]]) -> tuple[Process, int]:
    try:
        prometheus = binary("prometheus")
    except ServiceUnavailable:
        missing_service("Prometheus")
        raise
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": scrape_configs}))
    port = free_port()
    argv = [
        prometheus,
        f"--config.file={path}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = spawn("prometheus", argv, folder / "prometheus.log")
    wait_http(process, f"http://127.0.0.1:{port}/-/ready")
    return process, port


def up_by_job(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": "up"})
    with urllib.request.urlopen(url, timeout=10) as resp:
        result = json.load(resp)["data"]["result"]
    return {r["metric"]["job"]: float(r["value"][1]) for r in result}


def test_prometheus_scrapes_over_tls(exporters: dict[str, int], certs: Certificates, tmp_path: Path) -> None:
    def job(name: str, port: int, **extra: Any) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            **extra,
        }

    ca = {"ca_file": str(certs.ca)}
    client = {**ca, "cert_file": str(certs.client_cert), "key_file": str(certs.client_key)}
    jobs = [
        job(
            "basic",
            exporters["basic"],
            tls_config=ca,
            basic_auth={"username": "prometheus", "password": PASSWORD},
        ),
        job(
            "wrong-password",
            exporters["basic"],
            tls_config=ca,
            basic_auth={"username": "prometheus", "password": "x"},
        ),
        job("client-cert", exporters["mtls"], tls_config=client),
        job("no-client-cert", exporters["mtls"], tls_config=ca),
    ]
    process, port = start_prometheus(tmp_path, jobs)
    try:
        deadline = time.monotonic() + SCRAPE_WAIT
        up = up_by_job(port)
        while len(up) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.5)
            up = up_by_job(port)
        assert up == {"basic": 1.0, "wrong-password": 0.0, "client-cert": 1.0, "no-client-cert": 0.0}
        pg_up = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": "pg_up"})
        with urllib.request.urlopen(pg_up, timeout=10) as resp:
            samples = json.load(resp)["data"]["result"]
        assert {s["metric"]["job"]: s["value"][1] for s in samples} == {"basic": "1", "client-cert": "1"}
    finally:
        process.stop()


def test_check_config_and_errors(tmp_path: Path, certs: Certificates, monitor_dsn: str) -> None:
    config = exporter_config(tmp_path, monitor_dsn)
    good = web_config(
        tmp_path,
        "good",
        {
            "tls_server_config": {"cert_file": str(certs.server_cert), "key_file": str(certs.server_key)},
            "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)},
        },
    )
    result = run_cli("--config", str(config), "--web.config.file", str(good), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "  web: tls TLS12+, client certificates NoClientCert; basic auth (1 user(s))" in result.stdout
    bad = web_config(tmp_path, "bad", {"tls_server_config": {"cert_file": str(certs.server_cert)}})
    result = run_cli("--config", str(config), "--web.config.file", str(bad), "--check-config")
    assert result.returncode == 2
    assert f"{bad}: configuration invalid, 1 error(s):" in result.stderr
    assert "tls_server_config.key_file: Field required" in result.stderr
