"""Database credentials the way RDS users hold them: a Secrets Manager secret, or an RDS IAM auth token.

A target (or the responder's journal) names its server with `dsn`/`dsn_env`/`dsn_file` as before, and may add
- `dsn_secret: {secret_id, region}`: a Secrets Manager secret holding a DSN, or the JSON of an RDS-managed
  secret (`username`, `password`, and `host`, `port`, `dbname` where it has them), whose fields fill and
  override the DSN's. The secret is read at start-up and re-read when the server refuses the password
  (rotation); without another DSN source the secret is the whole DSN.
- `iam_auth: true` (or `{region: ...}`): the password of every new connection is an RDS IAM auth token,
  generated locally by botocore and renewed well before its 15 minutes are up; SSL is required.

`resolve_connection` does the stage-2 work and returns the first conninfo plus a `Credentials`, which the
connection code asks for fresh parameters (`params`) each time it opens a connection; `connect_fresh` does
that for async callers, re-reading after an authentication failure, and `PoolCredentials` for psycopg_pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field

from pgwarden.aws import AwsClients
from pgwarden.config import Errors, StrictModel
from pgwarden.dsn import DsnError, check_dsn
from pgwarden.secrets import SecretRef

log = logging.getLogger("pgwarden.credentials")

# An IAM token is valid for 15 minutes; a new one is made for every connection opened after 10.
TOKEN_LIFETIME = 900.0
TOKEN_RENEW_AFTER = 600.0
SECURE_SSLMODES = ("require", "verify-ca", "verify-full")
# The connection parameters a secret may change after start-up (never dbname: the exporter sets it per pool).
ROTATED_KEYS = ("host", "port", "user", "password")
# RDS host names carry their region: <id>.<hash>.<region>.rds.amazonaws.com
_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com(?:\.cn)?$")
_AUTH_FAILED = ("password authentication failed", "pam authentication failed")

T = TypeVar("T")


class DsnSecret(StrictModel):
    """`dsn_secret:` — a Secrets Manager secret (its name or ARN) in a region."""

    secret_id: str = Field(min_length=1)
    region: str = Field(min_length=1)


class IamAuth(StrictModel):
    """`iam_auth: {region: ...}`; `iam_auth: true` takes the region from the host name or the environment."""

    region: str | None = Field(default=None, min_length=1)


class CredentialsError(Exception):
    """A secret cannot be read or used; the message names the secret, never its value."""


def check_dsn_sources(model: Any, secret_key: str = "dsn_secret") -> None:
    """Exactly one of dsn, dsn_env, dsn_file, or a `dsn_secret` with at most one of them (its base)."""
    ref = SecretRef.of(model, "dsn")
    if getattr(model, secret_key, None) is None:
        ref.check_one()
    elif len(ref.sources()) > 1:
        raise ValueError(f"give at most one of dsn, dsn_env or dsn_file with {secret_key}")


def is_auth_failure(exc: BaseException) -> bool:
    """The server refused the password (libpq's message; it has no SQLSTATE for a failed connection)."""
    return isinstance(exc, psycopg.OperationalError) and any(s in str(exc).lower() for s in _AUTH_FAILED)


def read_secret(secret: DsnSecret) -> str:
    """The secret's SecretString from Secrets Manager (the endpoint from AWS_ENDPOINT_URL, as boto3 does)."""
    from botocore.exceptions import BotoCoreError, ClientError  # only for targets that use AWS credentials

    client = AwsClients().client("secretsmanager", secret.region)
    try:
        value = client.get_secret_value(SecretId=secret.secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise CredentialsError(f"cannot read secret {secret.secret_id!r}: {code}") from None
    except BotoCoreError as exc:
        raise CredentialsError(f"cannot read secret {secret.secret_id!r}: {exc}") from None
    text = value.get("SecretString")
    if not isinstance(text, str) or not text:
        raise CredentialsError(f"secret {secret.secret_id!r} has no SecretString")
    return text


def aws_credentials_configured() -> bool:
    """Whether boto3's default chain finds AWS credentials (environment, shared files, SSO, a container or
    instance role); it asks the instance metadata service last, which costs a second where there is none."""
    import botocore.session

    return botocore.session.Session().get_credentials() is not None


class SecretNotRead(CredentialsError):
    """--check-config without AWS credentials: the secret was left for start-up to read."""


class CheckConfigSecrets:
    """The secret reader of `--check-config`: with AWS credentials configured it reads each secret as start-up
    does (so a missing secret or permission is an error now); without, it reads none, raises `SecretNotRead`
    and keeps the secret in `skipped`, so a laptop with no AWS account checks the rest of the configuration.
    The credentials are looked up once, when first needed."""

    def __init__(
        self,
        read: Callable[[DsnSecret], str] = read_secret,
        credentials_configured: Callable[[], bool] = aws_credentials_configured,
    ) -> None:
        self.read = read
        self.credentials_configured = credentials_configured
        self.skipped: list[DsnSecret] = []
        self._offline: bool | None = None

    @property
    def offline(self) -> bool:
        """No AWS credentials are configured (looked up once)."""
        if self._offline is None:
            self._offline = not self.credentials_configured()
        return self._offline

    def __call__(self, secret: DsnSecret) -> str:
        if not self.offline:
            return self.read(secret)
        self.skipped.append(secret)
        raise SecretNotRead(f"secret {secret.secret_id!r} not read: no AWS credentials are configured")

    def notes(self, program: str) -> list[str]:
        """What was skipped, for the summary: each secret, and that start-up reads it."""
        return [
            f"note: secret {s.secret_id!r} ({s.region}) not read: no AWS credentials are configured;"
            f" {program} reads it at start-up (secretsmanager:GetSecretValue)"
            for s in self.skipped
        ]


def secret_params(text: str, secret_id: str) -> dict[str, str]:
    """Connection parameters from a secret: an RDS secret's JSON, or a DSN."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise CredentialsError(f"secret {secret_id!r} is not valid JSON") from None
        if not isinstance(data, dict) or not data.get("username") or not data.get("password"):
            raise CredentialsError(f"secret {secret_id!r}: the JSON needs username and password")
        names = {
            "username": "user",
            "password": "password",
            "host": "host",
            "port": "port",
            "dbname": "dbname",
        }
        return {param: str(data[key]) for key, param in names.items() if data.get(key) not in (None, "")}
    try:
        check_dsn(text)
    except DsnError:
        raise CredentialsError(f"secret {secret_id!r} is neither a DSN nor an RDS secret's JSON") from None
    return {k: str(v) for k, v in conninfo_to_dict(text).items() if v is not None}


class IamTokens:
    """RDS IAM auth tokens for one host, port and user: one is reused until TOKEN_RENEW_AFTER has passed."""

    def __init__(self, region: str, clock: Callable[[], float] = time.time) -> None:
        self.region = region
        self.clock = clock
        self._token: tuple[tuple[str, str, str], float, str] | None = None
        self._client: Any = None

    def token(self, host: str, port: str, user: str) -> str:
        key = (host, port, user)
        now = self.clock()
        if self._token is not None and self._token[0] == key and now - self._token[1] < TOKEN_RENEW_AFTER:
            return self._token[2]
        if self._client is None:
            self._client = AwsClients().client("rds", self.region)
        token: str = self._client.generate_db_auth_token(
            DBHostname=host, Port=int(port), DBUsername=user, Region=self.region
        )
        self._token = (key, now, token)
        return token

    def renew(self) -> None:
        """The next connection gets a new token (the server refused the last one)."""
        self._token = None


class Credentials:
    """Fresh parameters for each new connection to one server; thread-safe (the journal's pool threads)."""

    def __init__(
        self,
        conninfo: str,
        secret: DsnSecret | None = None,
        iam: IamTokens | None = None,
        base: str = "",
        fetch: Callable[[DsnSecret], str] = read_secret,
    ) -> None:
        self.secret = secret
        self.iam = iam
        self.base = base
        self.fetch = fetch
        self._lock = threading.Lock()
        self._params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if k in ROTATED_KEYS}
        self._stale = False

    @property
    def refreshable(self) -> bool:
        return self.secret is not None or self.iam is not None

    def params(self) -> dict[str, str]:
        """host, port, user and password for the next connection: the secret's (re-read if an authentication
        failed since), and the current IAM token as the password. May call AWS: run it off the event loop."""
        with self._lock:
            if self._stale and self.secret is not None:
                try:
                    fresh = secret_params(self.fetch(self.secret), self.secret.secret_id)
                except CredentialsError as exc:
                    log.warning("secret not re-read; the old one is kept", extra={"error": str(exc)})
                else:
                    merged = conninfo_to_dict(make_conninfo(self.base, **fresh))
                    self._params = {k: str(v) for k, v in merged.items() if k in ROTATED_KEYS}
                    log.info("secret re-read", extra={"secret_id": self.secret.secret_id})
            self._stale = False
            params = dict(self._params)
        if self.iam is not None:
            params["password"] = self.iam.token(
                params.get("host", ""), params.get("port", "5432"), params.get("user", "")
            )
        return params

    def authentication_failed(self) -> None:
        """The server refused the password: re-read the secret and make a new token for the next attempt."""
        with self._lock:
            self._stale = True
        if self.iam is not None:
            self.iam.renew()

    async def async_params(self) -> dict[str, str]:
        return await asyncio.to_thread(self.params)


async def connect_fresh(
    credentials: Credentials | None, connect: Callable[[dict[str, str]], Awaitable[T]]
) -> T:
    """`connect(params)` with fresh credentials (none: `{}`); when the server refuses them and they can be
    renewed (a rotated secret, an expired token), once more with renewed ones."""
    if credentials is None:
        return await connect({})
    try:
        return await connect(await credentials.async_params())
    except psycopg.OperationalError as exc:
        if not (credentials.refreshable and is_auth_failure(exc)):
            raise
    credentials.authentication_failed()
    return await connect(await credentials.async_params())


class PoolCredentials:
    """psycopg_pool's `kwargs` callable and `configure` hook: each connection the pool opens gets fresh
    credentials, and one that did not get as far as `configure` (refused: say, a rotated password) makes the
    next attempt re-read the secret. The pool's own backoff paces the retries."""

    def __init__(self, credentials: Credentials, static: Mapping[str, Any]) -> None:
        self.credentials = credentials
        self.static = dict(static)
        self._unconfirmed = 0
        self._lock = threading.Lock()

    def kwargs(self) -> dict[str, Any]:
        with self._lock:
            failed_before, self._unconfirmed = self._unconfirmed > 0, self._unconfirmed + 1
        if failed_before:
            self.credentials.authentication_failed()
        return {**self.static, **self.credentials.params()}

    def configure(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._unconfirmed = 0


def _iam_region(
    iam: bool | IamAuth, host: str, region_hint: str | None, env: Mapping[str, str]
) -> str | None:
    if isinstance(iam, IamAuth) and iam.region:
        return iam.region
    if region_hint:
        return region_hint
    if found := _RDS_HOST.search(host):
        return found.group(1)
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def resolve_credentials(
    base: str,
    secret: DsnSecret | None,
    iam: bool | IamAuth,
    where: str,
    errors: Errors,
    *,
    secret_key: str = "dsn_secret",
    region_hint: str | None = None,
    env: Mapping[str, str] | None = None,
    fetch: Callable[[DsnSecret], str] = read_secret,
) -> tuple[str, Credentials | None] | None:
    """Stage 2 for one server: the conninfo to start with (a secret read, merged over `base`; without the
    password when there are `Credentials` to give it) and its `Credentials` (None when the DSN is all there
    is); None with the errors recorded under `where`."""
    env = os.environ if env is None else env
    prefix = f"{where}." if where else ""
    conninfo = base
    if secret is not None:
        try:
            conninfo = make_conninfo(base, **secret_params(fetch(secret), secret.secret_id))
        except SecretNotRead:
            return base, None  # --check-config offline: what the DSN holds is all there is to check
        except CredentialsError as exc:
            errors.add(f"{prefix}{secret_key}.secret_id", str(exc))
            return None
    if iam is False:
        if secret is None:
            return conninfo, None
        credentials = Credentials(conninfo, secret, None, base, fetch)
        return _without_password(conninfo), credentials
    params = conninfo_to_dict(conninfo)
    problems = []
    if params.get("password") and secret is None:
        problems.append("the DSN must not hold a password: the IAM token is the password")
    if not params.get("host") or str(params["host"]).startswith("/"):
        problems.append("needs the server's host name in the DSN (the token is signed for it)")
    if not params.get("user"):
        problems.append("needs the database user in the DSN")
    sslmode = str(params.get("sslmode") or "require")
    if sslmode not in SECURE_SSLMODES:
        problems.append(f"needs sslmode {', '.join(SECURE_SSLMODES)} (the DSN says {sslmode})")
    region = _iam_region(iam, str(params.get("host") or ""), region_hint, env)
    if region is None:
        problems.append("no region: give iam_auth: {region: ...}, or set AWS_REGION")
    for problem in problems:
        errors.add(f"{prefix}iam_auth", problem)
    if problems or region is None:
        return None
    conninfo = make_conninfo(conninfo, sslmode=sslmode)
    return _without_password(conninfo), Credentials(conninfo, secret, IamTokens(region), base, fetch)


def _without_password(conninfo: str) -> str:
    """The conninfo to keep in the configuration: the password lives in `Credentials` only."""
    params = {k: v for k, v in conninfo_to_dict(conninfo).items() if k != "password"}
    return make_conninfo("", **params)


def resolve_server(
    model: Any,
    where: str,
    errors: Errors,
    *,
    region_hint: str | None = None,
    env: Mapping[str, str] | None = None,
    fetch: Callable[[DsnSecret], str] = read_secret,
) -> tuple[str, Credentials | None] | None:
    """Stage 2 for a config model with `dsn`/`dsn_env`/`dsn_file`, `dsn_secret` and `iam_auth`: its conninfo
    and `Credentials`, or None with the errors recorded under `where`."""
    ref = SecretRef.of(model, "dsn")
    base = errors.dsn(ref, where, env) if ref.given else ""
    if base is None:
        return None
    return resolve_credentials(
        base, model.dsn_secret, model.iam_auth, where, errors, region_hint=region_hint, env=env, fetch=fetch
    )
