"""The responder behind --web.config.file: TLS and basic auth, its bearer token still required where it was,
and a real Alertmanager delivering a webhook to it over TLS with the token."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.processes import Process, free_port, spawn, wait_http, wait_tcp
from devtools.services import ServiceUnavailable, binary
from tests.pgwarden.certs import Certificates, bcrypt_hash, make_certificates
from tests.support.responder import TOKEN
from tests.support.services import missing_service
from tests.support.webhook import alert, payload

PASSWORD = "operator-pw"
DELIVERY_WAIT = 60.0  # a bound for waiting, never asserted on


def call(
    url: str, context: ssl.SSLContext, authorization: str | None = None, body: Any = None
) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BEARER = f"Bearer {TOKEN}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory, certs: Certificates) -> Iterator[str]:
    """`python -m responder` on https with basic auth; its base URL."""
    folder = tmp_path_factory.mktemp("responder")
    config = folder / "responder.yml"
    config.write_text(
        yaml.safe_dump({"mode": "dry-run", "token": TOKEN, "journal": f"sqlite:///{folder / 'journal.db'}"})
    )
    web = folder / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(certs.server_cert), "key_file": str(certs.server_key)},
                "basic_auth_users": {"operator": bcrypt_hash(PASSWORD)},
                "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
            }
        )
    )
    port = free_port()
    argv = [sys.executable, "-m", "responder", "--config", str(config), "--web.config.file", str(web)]
    process = spawn(
        "responder", [*argv, "--web.listen-address", f"127.0.0.1:{port}"], folder / "responder.log"
    )
    try:
        wait_tcp(process, port)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.stop()


def test_basic_auth_or_the_token(responder: str, certs: Certificates) -> None:
    context = certs.client_context()
    assert call(f"{responder}/healthz", context)[0] == 401
    assert call(f"{responder}/healthz", context, basic("operator", "wrong"))[0] == 401
    assert call(f"{responder}/healthz", context, basic("operator", PASSWORD))[0] == 200
    assert call(f"{responder}/metrics", context, BEARER)[0] == 200
    assert call(f"{responder}/metrics", context, "Bearer not-the-token")[0] == 401
    # The webhook and the actions API keep their bearer token: basic auth alone does not open them.
    body = payload(alert())
    assert call(f"{responder}/webhook", context, basic("operator", PASSWORD), body)[0] == 401
    status, text = call(f"{responder}/webhook", context, BEARER, body)
    assert status == 202, text
    assert call(f"{responder}/actions", context, BEARER)[0] == 200


def test_headers_and_no_plain_http(responder: str, certs: Certificates) -> None:
    request = urllib.request.Request(f"{responder}/healthz", headers={"Authorization": BEARER})
    with urllib.request.urlopen(request, context=certs.client_context(), timeout=20) as resp:
        assert resp.headers["X-Frame-Options"] == "deny"
    with pytest.raises(OSError):
        urllib.request.urlopen(responder.replace("https:", "http:") + "/healthz", timeout=10)


def webhooks_accepted(responder: str, context: ssl.SSLContext) -> float:
    _, text = call(f"{responder}/metrics", context, BEARER)
    for line in text.splitlines():
        if line.startswith('pgwarden_responder_webhooks_total{code="202"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_alertmanager_delivers_over_tls(responder: str, certs: Certificates, tmp_path: Path) -> None:
    try:
        alertmanager = binary("prometheus-alertmanager", "alertmanager")
    except ServiceUnavailable:
        missing_service("Alertmanager")
        raise
    context = certs.client_context()
    before = webhooks_accepted(responder, context)
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "pgwarden", "group_wait": "0s", "group_interval": "1s"},
                "receivers": [
                    {
                        "name": "pgwarden",
                        "webhook_configs": [
                            {
                                "url": f"{responder}/webhook",
                                "http_config": {
                                    "authorization": {"credentials": TOKEN},
                                    "tls_config": {"ca_file": str(certs.ca)},
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    port = free_port()
    argv = [
        alertmanager,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    process: Process = spawn("alertmanager", argv, tmp_path / "alertmanager.log")
    try:
        wait_http(process, f"http://127.0.0.1:{port}/-/ready")
        now = dt.datetime.now(dt.UTC).isoformat()
        alerts = [{"labels": {"alertname": "TLSDelivery", "severity": "critical"}, "startsAt": now}]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        deadline = time.monotonic() + DELIVERY_WAIT
        while webhooks_accepted(responder, context) <= before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert webhooks_accepted(responder, context) > before, process.log_tail()
    finally:
        process.stop()
