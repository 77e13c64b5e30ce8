"""--web.config.file: the exporter-toolkit format validated, and a real TLS server with basic auth behind it."""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from devtools.processes import free_port
from pgwarden.config import ConfigError
from pgwarden.webconfig import WebConfig, load_web_config
from tests.pgwarden.certs import Certificates, bcrypt_hash, make_certificates

PASSWORD = "scrape-pw"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def write(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / "web.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    return caught.value.errors


def tls(certs: Certificates, **extra: Any) -> dict[str, Any]:
    return {"cert_file": str(certs.server_cert), "key_file": str(certs.server_key), **extra}


def test_no_file_is_plain_http_without_auth() -> None:
    config = load_web_config(None)
    assert config.ssl_context is None and config.scheme == "http"
    assert config.describe() == "plain HTTP; no basic auth"


def test_errors_name_the_key(tmp_path: Path, certs: Certificates) -> None:
    document = {
        "tls_server_config": tls(certs, client_auth_type="RequireAnyClientCert", cipher_suites=["x"]),
        "http_server_config": {"headers": {"X-Powered-By": "me"}},
        "basic_auth_users": {"alice": "plaintext"},
    }
    lines = errors_of(write(tmp_path, document))
    assert any(
        line.startswith("tls_server_config.client_auth_type: RequireAnyClientCert is not supported")
        for line in lines
    )
    assert "tls_server_config.cipher_suites: unknown key" in lines
    assert any(
        line.startswith("http_server_config.headers: HTTP header 'X-Powered-By' can not be configured")
        for line in lines
    )
    assert any(line.startswith("basic_auth_users: alice: not a bcrypt hash") for line in lines)
    assert "plaintext" not in "\n".join(lines).replace("alice: not a bcrypt hash", "")


def test_verifying_clients_needs_a_ca(tmp_path: Path, certs: Certificates) -> None:
    path = write(tmp_path, {"tls_server_config": tls(certs, client_auth_type="RequireAndVerifyClientCert")})
    assert errors_of(path) == [
        "tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file"
    ]


def test_header_values_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}})
    assert errors_of(path) == [
        "http_server_config.headers: invalid value for X-Frame-Options: expected one of deny, sameorigin"
    ]


def test_unreadable_key_is_reported_at_load(tmp_path: Path, certs: Certificates) -> None:
    wrong_key = tls(certs, key_file=str(certs.client_key))  # not the certificate's key
    lines = errors_of(write(tmp_path, {"tls_server_config": wrong_key}))
    assert len(lines) == 1 and lines[0].startswith("tls_server_config.cert_file: cannot load")
    missing = tls(certs, client_auth_type="VerifyClientCertIfGiven", client_ca_file="absent.crt")
    lines = errors_of(write(tmp_path, {"tls_server_config": missing}))
    assert lines == ["tls_server_config.client_ca_file: cannot load absent.crt: No such file or directory"]


def test_relative_paths_are_read_beside_the_file(certs: Certificates) -> None:
    path = write(certs.folder, {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}})
    assert load_web_config(path).ssl_context is not None


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """Start a real server with a web config document; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def start(document: dict[str, Any], also_accept: Any = None) -> str:
        config = load_web_config(write(tmp_path, document))
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(config.apply(app, also_accept))
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=config.ssl_context).start()
        return f"{config.scheme}://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def get(
    url: str, context: ssl.SSLContext | None, auth: str | None = None, **headers: str
) -> tuple[int, dict[str, str], str]:
    if auth is not None:
        headers["Authorization"] = auth
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=context if context is not None else False, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


async def test_basic_auth_over_tls(serve: Any, certs: Certificates) -> None:
    url = await serve(
        {
            "tls_server_config": tls(certs),
            "basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)},
            "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        }
    )
    assert url.startswith("https://")
    context = certs.client_context()
    status, headers, _ = await get(url, context)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="pgwarden"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert (await get(url, context, basic("prometheus", "wrong")))[0] == 401
    assert (await get(url, context, basic("nobody", PASSWORD)))[0] == 401
    for _ in range(2):  # the second is answered from the cache of verified credentials
        status, headers, body = await get(url, context, basic("prometheus", PASSWORD))
        assert (status, body) == (200, "hello")
        assert headers["X-Content-Type-Options"] == "nosniff"
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(url, ssl.create_default_context(cafile=str(certs.other_ca)))


async def test_other_credentials_the_application_accepts(serve: Any) -> None:
    url = await serve(
        {"basic_auth_users": {"prometheus": bcrypt_hash(PASSWORD)}},
        lambda request: request.headers.get("Authorization") == "Bearer let-me-in",
    )
    assert (await get(url, None, Authorization="Bearer let-me-in"))[0] == 200
    assert (await get(url, None, Authorization="Bearer guess"))[0] == 401


async def test_client_certificates(serve: Any, certs: Certificates) -> None:
    required = tls(certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca))
    url = await serve({"tls_server_config": required})
    assert (await get(url, certs.client_context(with_client_cert=True)))[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await get(url, certs.client_context())
    if_given = tls(certs, client_auth_type="VerifyClientCertIfGiven", client_ca_file=str(certs.ca))
    url = await serve({"tls_server_config": if_given})
    assert (await get(url, certs.client_context()))[0] == 200
    assert (await get(url, certs.client_context(with_client_cert=True)))[0] == 200


async def test_client_allowed_sans(serve: Any, certs: Certificates) -> None:
    base = tls(certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca))
    allowed = await serve({"tls_server_config": {**base, "client_allowed_sans": ["scraper"]}})
    refused = await serve({"tls_server_config": {**base, "client_allowed_sans": ["someone-else"]}})
    context = certs.client_context(with_client_cert=True)
    assert (await get(allowed, context))[0] == 200
    assert (await get(refused, context))[0] == 403


async def test_min_version(serve: Any, certs: Certificates) -> None:
    url = await serve({"tls_server_config": tls(certs, min_version="TLS13")})
    old = certs.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientError):
        await get(url, old)
    assert (await get(url, certs.client_context()))[0] == 200


def test_describe(tmp_path: Path, certs: Certificates) -> None:
    config = WebConfig(load_web_config(write(tmp_path, {"basic_auth_users": {"a": bcrypt_hash("x")}})).schema)
    assert config.describe() == "plain HTTP; basic auth (1 user(s))"
    full = load_web_config(write(tmp_path, {"tls_server_config": tls(certs)}))
    assert full.describe() == "tls TLS12+, client certificates NoClientCert; no basic auth"


async def test_certificate_files_reloaded(serve: Any, tmp_path: Path) -> None:
    """Replaced certificate files are served from the next handshake on; a broken pair keeps the last good."""
    first = make_certificates(tmp_path / "first")
    second = make_certificates(tmp_path / "second")
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.crt", "server.key"):
        shutil.copy(first.folder / name, live / name)
    url = await serve(
        {"tls_server_config": {"cert_file": str(live / "server.crt"), "key_file": str(live / "server.key")}}
    )

    async def served() -> bytes:
        pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", int(url.rsplit(":", 1)[1])))
        return ssl.PEM_cert_to_DER_cert(pem)

    def der(path: Path) -> bytes:
        return ssl.PEM_cert_to_DER_cert(path.read_text())

    assert await served() == der(first.server_cert)
    shutil.copy(second.server_cert, live / "server.crt")  # half-way: the new certificate with the old key
    assert await served() == der(first.server_cert)
    shutil.copy(second.server_key, live / "server.key")
    assert await served() == der(second.server_cert)
