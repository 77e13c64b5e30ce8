"""/probe?target=<DSN>&auth_module=<name> as postgres_exporter answers it, with pgwarden's credential sources
(file, environment, Secrets Manager; IAM's checks) and the allowlist, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from psycopg import sql

from devtools.pgserver import PostgresServer, free_port
from exporter.app import PROBES, make_app
from exporter.assemble import resolve_targets
from exporter.config import parse_config
from exporter.probe import ProbeError, ProbeSettings, allowed_address
from exporter.serving import ServeOptions
from exporter.target import DatabasesConfig, TargetConfig
from exporter.upstream_config import ProbeAllowlist, UpstreamConfig
from tests.support.exporter import Samples
from tests.support.exporter_process import clean_env, run_cli, running_exporter
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE, ssl_only_server
from tests.support.services import moto_in_environment

Client = TestClient[web.Request, web.Application]
REGION = "eu-west-1"
SECRET_ID = "probe-monitor"


def auth_modules(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    password_file = tmp_path / "monitor.pw"
    password_file.write_text(MONITOR_PASSWORD + "\n")
    user = {"username": MONITOR_ROLE}
    return {
        "monitor": {"type": "userpass", "userpass": {**user, "password": MONITOR_PASSWORD}},
        "from_file": {"type": "userpass", "userpass": {**user, "password_file": str(password_file)}},
        "from_env": {"type": "userpass", "userpass": {**user, "password_env": "PGW_PROBE_PW"}},
        "no_password": {"type": "userpass", "userpass": user},
        "ssl_required": {
            "type": "userpass",
            "userpass": {**user, "password": MONITOR_PASSWORD},
            "options": {"sslmode": "require"},
        },
        **extra,
    }


async def probe_client(
    aiohttp_client: Any, modules: dict[str, Any], allowlist: dict[str, Any] | None = None, **settings: Any
) -> Client:
    upstream = UpstreamConfig.model_validate({"auth_modules": modules, "probe_targets": allowlist})
    config = parse_config({"targets": [{"name": "configured", "dsn": "postgresql://u@127.0.0.1:1/db"}]})
    probes = ProbeSettings(upstream.auth_modules, upstream.probe_targets, **settings)
    client: Client = await aiohttp_client(
        make_app(config, resolve_targets(config), ServeOptions(probes=probes))
    )
    return client


async def probe(client: Client, target: str, module: str = "") -> tuple[int, str]:
    params = {"target": target, **({"auth_module": module} if module else {})}
    resp = await client.get("/probe", params=params)
    return resp.status, await resp.text()


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGW_PROBE_PW", MONITOR_PASSWORD)


async def test_probes_as_postgres_exporter_answers_them(
    aiohttp_client: Any, pg_server: PostgresServer, tmp_path: Path, password_env: None
) -> None:
    client = await probe_client(aiohttp_client, auth_modules(tmp_path))
    target = f"127.0.0.1:{pg_server.port}/postgres"
    for module in ("monitor", "from_file", "from_env"):
        status, body = await probe(client, target, module)
        assert status == 200, (module, body)
        samples = Samples(body)
        assert samples.get("pg_up") == 1, module
        assert samples.get("pg_stat_database_numbackends", datname="postgres") is not None
        assert samples.get("pg_exporter_connections_max") == 3  # a configured target's budget
        assert "target=" not in body
    # the other forms postgres_exporter reads: a URL, key=value pairs (credentials in them, no module)
    url = pg_server.dsn("postgres", user=MONITOR_ROLE, password=MONITOR_PASSWORD)
    assert Samples((await probe(client, url))[1]).get("pg_up") == 1
    keyvalue = f"host=127.0.0.1 port={pg_server.port} dbname=postgres user={MONITOR_ROLE} password={MONITOR_PASSWORD}"
    assert Samples((await probe(client, keyvalue))[1]).get("pg_up") == 1
    # postgres_exporter's refusals
    assert await probe(client, "") == (400, "target is required\n")
    assert (await probe(client, target, "nosuch"))[0] == 400
    status, body = await probe(client, target, "no_password")
    assert status == 400 and "no_password has no username or password" in body
    # the module's options reach libpq: this server has no TLS, so sslmode=require cannot connect
    assert Samples((await probe(client, target, "ssl_required"))[1]).get("pg_up") == 0
    # a configured target's name still answers, and a bare unknown name is still not a DSN
    assert (await probe(client, "nope"))[0] == 404


async def test_a_server_that_is_down_is_pg_up_0_within_the_connect_timeout(
    aiohttp_client: Any, tmp_path: Path, blackhole: int
) -> None:
    client = await probe_client(aiohttp_client, auth_modules(tmp_path))
    for port in (free_port(), blackhole):  # refused, and accepted but never answered
        started = time.monotonic()
        status, body = await probe(client, f"127.0.0.1:{port}/postgres", "monitor")
        assert status == 200 and Samples(body).get("pg_up") == 0
        assert time.monotonic() - started < 3.0 + 1.5  # the default connect timeout, and some slack


async def test_the_allowlist_refuses_before_connecting(
    aiohttp_client: Any, pg_server: PostgresServer, tmp_path: Path
) -> None:
    modules = auth_modules(tmp_path)
    target = f"127.0.0.1:{pg_server.port}/postgres"
    by_name = await probe_client(aiohttp_client, modules, {"hosts": ["db-*.internal", "127.0.0.1"]})
    assert Samples((await probe(by_name, target, "monitor"))[1]).get("pg_up") == 1
    status, body = await probe(by_name, f"10.1.2.3:{pg_server.port}/postgres", "monitor")
    assert status == 403 and "10.1.2.3 is not in probe_targets" in body
    assert (await probe(by_name, f"{target}?hostaddr=10.1.2.3", "monitor"))[0] == 403

    by_cidr = await probe_client(aiohttp_client, modules, {"cidrs": ["127.0.0.0/8"]})
    assert (
        Samples((await probe(by_cidr, f"localhost:{pg_server.port}/postgres", "monitor"))[1]).get("pg_up")
        == 1
    )
    assert (await probe(by_cidr, f"192.0.2.10:{pg_server.port}/postgres", "monitor"))[0] == 403

    only_rds = await probe_client(aiohttp_client, modules, {"discovered_rds": True})
    assert (await probe(only_rds, target, "monitor"))[0] == 403  # no AWS poller: nothing discovered


def test_allowlist_and_modules_are_validated() -> None:
    allow = ProbeAllowlist.model_validate({"cidrs": ["10.0.0.0/8"], "hosts": ["*.rds.amazonaws.com"]})
    assert str(allow.cidrs[0]) == "10.0.0.0/8"
    with pytest.raises(ValueError, match="one password source"):
        UpstreamConfig.model_validate(
            {"auth_modules": {"m": {"type": "userpass", "userpass": {"password": "x", "password_env": "Y"}}}}
        )
    with pytest.raises(ValueError):
        UpstreamConfig.model_validate({"auth_modules": {"m": {"type": "kerberos"}}})
    with pytest.raises(ValueError):  # unknown keys refused, as postgres_exporter's decoder refuses them
        UpstreamConfig.model_validate({"auth_modules": {"m": {"type": "userpass", "userpas": {}}}})


@pytest.fixture(scope="module")
def secret_in_moto() -> Iterator[None]:
    with moto_in_environment() as (server, _):
        secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=server.endpoint_url)
        text = json.dumps(
            {"username": MONITOR_ROLE, "password": MONITOR_PASSWORD, "host": "elsewhere.invalid"}
        )
        try:
            secrets.create_secret(Name=SECRET_ID, SecretString=text)
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=SECRET_ID, SecretString=text)
        yield


async def test_credentials_from_secrets_manager_and_iam_checks(
    aiohttp_client: Any, pg_server: PostgresServer, tmp_path: Path, secret_in_moto: None
) -> None:
    modules = auth_modules(
        tmp_path,
        from_secret={"type": "userpass", "dsn_secret": {"secret_id": SECRET_ID, "region": REGION}},
        missing_secret={"type": "userpass", "dsn_secret": {"secret_id": "nosuch", "region": REGION}},
        iam={"type": "userpass", "userpass": {"username": MONITOR_ROLE}, "iam_auth": {"region": REGION}},
        iam_plain={
            "type": "userpass",
            "userpass": {"username": MONITOR_ROLE},
            "iam_auth": True,
            "options": {"sslmode": "disable"},
        },
    )
    client = await probe_client(aiohttp_client, modules, databases=DatabasesConfig(include=("postgres",)))
    target = f"127.0.0.1:{pg_server.port}/postgres"
    status, body = await probe(
        client, target, "from_secret"
    )  # the secret's host is not used: the target's is
    assert status == 200 and Samples(body).get("pg_up") == 1, body
    assert MONITOR_PASSWORD not in body
    status, body = await probe(client, target, "missing_secret")
    assert status == 400 and "nosuch" in body
    # an IAM token is signed and sent over TLS (sslmode require by default): this server has none
    status, body = await probe(client, target, "iam")
    assert status == 200 and Samples(body).get("pg_up") == 0
    status, body = await probe(client, target, "iam_plain")  # refused before connecting
    assert status == 400 and "iam_auth" in body and "sslmode" in body


@pytest.fixture(scope="module")
def ssl_server() -> Iterator[PostgresServer]:
    with ssl_only_server() as server:
        yield server


async def test_iam_auth_module_connects_with_its_token_over_ssl(
    aiohttp_client: Any, ssl_server: PostgresServer, tmp_path: Path, secret_in_moto: None
) -> None:
    """An auth module with iam_auth connects with the token botocore signed for the probed host, port and
    user, as its password, over SSL. RDS checks such a token itself; here the role's password is set to the
    token the probe holds (as tests/pgwarden/test_credentials.py does for a configured target)."""
    ssl_server.execute("DROP ROLE IF EXISTS probe_iam")
    ssl_server.execute("CREATE ROLE probe_iam LOGIN IN ROLE pg_monitor")
    modules = auth_modules(
        tmp_path,
        iam={"type": "userpass", "userpass": {"username": "probe_iam"}, "iam_auth": {"region": REGION}},
    )
    client = await probe_client(aiohttp_client, modules, databases=DatabasesConfig(include=("postgres",)))
    target = f"127.0.0.1:{ssl_server.port}/postgres"
    status, body = await probe(client, target, "iam")
    assert status == 200 and Samples(body).get("pg_up") == 0, body  # the role accepts no password yet
    [(scraper, _)] = client.app[PROBES]._scrapers.values()
    credentials = scraper.target.credentials
    assert credentials is not None and credentials.iam is not None
    token = credentials.params()["password"]
    where, _, query = token.partition("/?")
    signed = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
    assert where == f"127.0.0.1:{ssl_server.port}"
    assert signed["Action"] == "connect" and signed["DBUser"] == "probe_iam"
    assert signed["X-Amz-Credential"].endswith(f"/{REGION}/rds-db/aws4_request")
    ssl_server.execute(sql.SQL("ALTER ROLE probe_iam PASSWORD {}").format(sql.Literal(token)).as_string())
    status, body = await probe(client, target, "iam")
    assert status == 200 and Samples(body).get("pg_up") == 1, body
    assert (Samples(body).get("pg_database_size_bytes", datname="postgres") or 0) > 0
    assert token not in body
    sessions = ssl_server.execute(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'probe_iam'"
    )
    assert sessions and all(ssl for (ssl,) in sessions)  # the probe's connections are held, each over SSL


async def test_discovered_rds_endpoints_are_allowed_by_name() -> None:
    allow = ProbeAllowlist(discovered_rds=True)
    endpoint = "orders.abc123.eu-west-1.rds.amazonaws.com"
    assert await allowed_address({"host": endpoint.upper(), "port": "5432"}, allow, {endpoint}) is None
    with pytest.raises(ProbeError) as refused:
        await allowed_address({"host": "other.example.com"}, allow, {endpoint})
    assert refused.value.status == 403


def test_config_and_config_file_combine(tmp_path: Path, pg_server: PostgresServer, monitor_dsn: str) -> None:
    """pgwarden's --config says what /metrics scrapes, postgres_exporter's --config.file how /probe connects."""
    config = tmp_path / "exporter.yml"
    config.write_text(f"targets:\n  - name: main\n    dsn: {monitor_dsn}\n")
    modules = tmp_path / "postgres_exporter.yml"
    modules.write_text(
        f"auth_modules:\n  m:\n    type: userpass\n    userpass: {{username: {MONITOR_ROLE}, password: {MONITOR_PASSWORD}}}\n"
    )
    args = ("--config", str(config), f"--config.file={modules}")
    with running_exporter(tmp_path, *args, env=clean_env()) as exporter:
        metrics = Samples(exporter.get("/metrics")[2])
        target = urllib.parse.quote(f"127.0.0.1:{pg_server.port}/postgres")
        status, _, body = exporter.get(f"/probe?target={target}&auth_module=m")
        configured = Samples(exporter.get("/probe?target=main")[2])
    assert metrics.get("pg_up") == 1 and configured.get("pg_up") == 1
    assert status == 200 and Samples(body).get("pg_up") == 1
    assert metrics.get("postgres_exporter_config_last_reload_successful") == 1
    # pgwarden's file given as postgres_exporter's: a clear error, not a guess
    result = run_cli(f"--config.file={config}", env=clean_env(DATA_SOURCE_NAME=monitor_dsn))
    assert result.returncode == 2 and "give that file with --config" in result.stderr


@pytest.mark.slow  # the idle timeout: 10 s
async def test_probed_connections_keep_a_targets_budget_and_idle_timeout_and_go_with_the_probe(
    aiohttp_client: Any,
    pg_server: PostgresServer,
    databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probed target's connections are held as a configured target's: within its budget, those to other
    databases than the DSN's closed after its idle timeout, and all of them closed once the target has gone
    unprobed for PROBE_IDLE."""
    pg_server.execute("DROP ROLE IF EXISTS probe_idle")
    pg_server.execute(f"CREATE ROLE probe_idle LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
    idle = {"type": "userpass", "userpass": {"username": "probe_idle", "password": MONITOR_PASSWORD}}
    client = await probe_client(aiohttp_client, auth_modules(tmp_path, idle=idle))
    target = f"127.0.0.1:{pg_server.port}/postgres"
    configured = TargetConfig(name="configured", dsn="host=h")

    def held() -> dict[str, int]:
        rows = pg_server.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE usename = 'probe_idle' GROUP BY datname"
        )
        return {str(db): int(n) for db, n in rows}

    async def eventually(predicate: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, held()
            await asyncio.sleep(0.1)

    try:
        status, body = await probe(client, target, "idle")
        samples = Samples(body)
        assert status == 200 and samples.get("pg_up") == 1, body
        visited = {lbl["datname"] for lbl, _ in samples.all("pg_scrape_collector_database_success")}
        assert set(databases) < visited  # every database of the server, through the budget
        assert samples.get("pg_exporter_connections_max") == configured.max_connections
        peak = samples.get("pg_exporter_connections_peak")
        assert peak is not None and 1 <= peak <= configured.max_connections
        # at rest after the idle timeout: one connection, to the DSN's database
        started = time.monotonic()
        assert sum(held().values()) > 1, held()  # the scrape left others open, idle
        await eventually(lambda: held() == {"postgres": 1}, configured.idle_timeout + 5)
        assert time.monotonic() - started >= configured.idle_timeout - 2  # not closed sooner
        # unprobed for PROBE_IDLE: the next probe of another target closes the target's last connection
        monkeypatch.setattr("exporter.probe.PROBE_IDLE", 0.0)
        assert Samples((await probe(client, target, "monitor"))[1]).get("pg_up") == 1
        assert (target, "idle") not in client.app[PROBES]._scrapers
        await eventually(lambda: held() == {}, 5)
    finally:
        await client.app[PROBES].close()
        pg_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'probe_idle'"
        )
        pg_server.execute("DROP ROLE IF EXISTS probe_idle")
