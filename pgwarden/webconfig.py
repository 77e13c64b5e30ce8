"""`--web.config.file`: TLS, basic auth and response headers in the Prometheus exporter-toolkit format.

The same file as every Prometheus exporter's (`tls_server_config`, `basic_auth_users`, `http_server_config`),
shared by both programs. `load_web_config(path)` validates it (errors name the key path) and opens the
certificates once, so that a bad key or CA file fails at start-up; `WebConfig.ssl_context` is what the server
listens with and `WebConfig.middleware` checks the basic-auth credentials and adds the configured headers.

Python's TLS verifies every client certificate it asks for, so of Go's client auth types only the ones that
verify are offered: `NoClientCert`, `VerifyClientCertIfGiven` and `RequireAndVerifyClientCert`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import Field, field_validator, model_validator

from pgwarden.config import ConfigError, StrictModel, load_yaml, validate_document

log = logging.getLogger("pgwarden.web")

MAX_BCRYPT_PASSWORD = 72  # bytes; bcrypt raises for longer ones

TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

# The exporter-toolkit's list: only these headers may be set, some only to these values (any case).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
UNSUPPORTED_CLIENT_AUTH = {
    "RequestClientCert": "Python's TLS verifies every client certificate it asks for",
    "RequireAnyClientCert": "Python's TLS verifies every client certificate it asks for",
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@functools.cache
def _decoy_hash() -> bytes:
    """An unknown user is checked against this hash, so that its answer takes as long as a wrong password's."""
    return bcrypt.hashpw(b"decoy password", bcrypt.gensalt(10))


class TLSServerConfig(StrictModel):
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_allowed_sans: tuple[str, ...] = ()
    min_version: TLSVersion = "TLS12"
    max_version: TLSVersion = "TLS13"

    @field_validator("client_auth_type")
    @classmethod
    def _known_client_auth(cls, value: str) -> str:
        if value in UNSUPPORTED_CLIENT_AUTH:
            raise ValueError(
                f"{value} is not supported ({UNSUPPORTED_CLIENT_AUTH[value]}); "
                "use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )
        if value not in ("NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
            raise ValueError(
                f"unknown client_auth_type {value!r}: use NoClientCert, VerifyClientCertIfGiven or "
                "RequireAndVerifyClientCert"
            )
        return value

    @model_validator(mode="after")
    def _ca_when_verifying(self) -> TLSServerConfig:
        if self.client_auth_type != "NoClientCert" and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if self.client_allowed_sans and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        return self


class HTTPServerConfig(StrictModel):
    http2: bool = True  # accepted for compatibility; aiohttp serves HTTP/1.1 only
    headers: dict[str, str] = {}

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            canonical = next((h for h in ALLOWED_HEADERS if h.lower() == name.lower()), None)
            if canonical is None:
                raise ValueError(
                    f"HTTP header {name!r} can not be configured (allowed: {', '.join(ALLOWED_HEADERS)})"
                )
            values = ALLOWED_HEADERS[canonical]
            if values is not None and value.lower() not in values:
                raise ValueError(f"invalid value for {canonical}: expected one of {', '.join(values)}")
        return headers


class WebConfigSchema(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = HTTPServerConfig()
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not _is_bcrypt(hashed):
                raise ValueError(f"{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 {user}`)")
        return users


def _is_bcrypt(hashed: str) -> bool:
    try:
        bcrypt.checkpw(b"", hashed.encode())
    except ValueError:
        return False
    return True


def _basic_credentials(header: str) -> tuple[str, bytes] | None:
    """The user and password of a `Basic` Authorization header, or None for anything else: another scheme,
    text that is not ASCII base64 (aiohttp keeps bytes that are not UTF-8 as surrogates), credentials that are
    not UTF-8 or have no colon, or a password bcrypt cannot check (over its 72 bytes: Go's bcrypt, as the
    exporter-toolkit uses it, refuses those too, rather than compare a prefix)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode()
    except (UnicodeError, binascii.Error):
        return None
    user, sep, password = decoded.partition(":")
    secret = password.encode()
    if not sep or len(secret) > MAX_BCRYPT_PASSWORD:
        return None
    return user, secret


@dataclass
class WebConfig:
    """A validated web configuration with its TLS context built; `WebConfig()` serves plain HTTP, no auth."""

    schema: WebConfigSchema = field(default_factory=WebConfigSchema)
    ssl_context: ssl.SSLContext | None = None
    _verified: dict[tuple[str, bytes], bool] = field(default_factory=dict, repr=False)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def describe(self) -> str:
        """A line for --check-config: TLS, client certificates, basic-auth users, headers."""
        tls = self.schema.tls_server_config
        parts = [
            f"tls {tls.min_version}+, client certificates {tls.client_auth_type}" if tls else "plain HTTP"
        ]
        users = self.schema.basic_auth_users
        parts.append(f"basic auth ({len(users)} user(s))" if users else "no basic auth")
        headers = self.schema.http_server_config.headers
        if headers:
            parts.append(f"headers {', '.join(headers)}")
        return "; ".join(parts)

    async def authenticated(self, header: str) -> bool:
        """Whether an Authorization header carries a configured user's password. bcrypt is slow on purpose,
        so it runs in a thread and a verified (user, password digest) is remembered."""
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        key = (user, hashlib.sha256(password).digest())
        known = self._verified.get(key)
        if known is None:
            hashed = self.schema.basic_auth_users.get(user)
            target = hashed.encode() if hashed is not None else _decoy_hash()
            matches = await asyncio.to_thread(bcrypt.checkpw, password, target)
            known = matches and hashed is not None
            if len(self._verified) > 1024:  # bounded: a client trying passwords cannot grow it for ever
                self._verified.clear()
            self._verified[key] = known
        return known

    def allowed_peer(self, request: web.Request) -> bool:
        """With client_allowed_sans: the verified client certificate names one of them."""
        tls = self.schema.tls_server_config
        if tls is None or not tls.client_allowed_sans:
            return True
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        names = {value for _, value in (peer or {}).get("subjectAltName", ())}
        return bool(names & set(tls.client_allowed_sans))

    def middleware(self, also_accept: Callable[[web.Request], bool] | None = None) -> Middleware:
        """An aiohttp middleware: without valid basic-auth credentials (when users are configured) a 401, a
        client certificate outside client_allowed_sans a 403. `also_accept` lets a request through on other
        credentials the application checks itself."""
        users = self.schema.basic_auth_users

        @web.middleware
        async def web_config(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not self.allowed_peer(request):
                raise web.HTTPForbidden(text="client certificate not allowed\n")
            if users and not (
                await self.authenticated(request.headers.get("Authorization", ""))
                or (also_accept is not None and also_accept(request))
            ):
                raise web.HTTPUnauthorized(
                    text="Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="pgwarden"'}
                )
            return await handler(request)

        return web_config

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(self.schema.http_server_config.headers)

    def apply(
        self, app: web.Application, also_accept: Callable[[web.Request], bool] | None = None
    ) -> web.Application:
        """`app` with this configuration's checks as its first middleware, and the configured headers on every
        answer (streamed ones and errors too: they are added as each response is prepared)."""
        if self.schema.basic_auth_users or self.allowed_sans:
            app.middlewares.insert(0, self.middleware(also_accept))
        if self.schema.http_server_config.headers:
            app.on_response_prepare.append(self._add_headers)
        return app

    @property
    def allowed_sans(self) -> bool:
        tls = self.schema.tls_server_config
        return tls is not None and bool(tls.client_allowed_sans)


def ssl_context(tls: TLSServerConfig, base: Path) -> ssl.SSLContext:
    """The server's TLS context; relative paths are read from `base` (the web config file's folder).
    Raises ConfigError naming the key whose file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.maximum_version = _TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(base / tls.cert_file, base / tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            [f"tls_server_config.cert_file: cannot load {tls.cert_file} with {tls.key_file}: {_why(exc)}"]
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=base / tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                [f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: {_why(exc)}"]
            ) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if tls.client_auth_type == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
        )
    return context


def _why(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


class CertificateReloader:
    """Serves what the certificate and key files hold now, as the exporter-toolkit does: each handshake checks
    their modification times (a stat, no read), and a changed pair is loaded into a new context used from that
    handshake on. A pair that does not load (half written, not matching) leaves the last good one in use."""

    def __init__(self, tls: TLSServerConfig, base: Path) -> None:
        self.tls = tls
        self.base = base
        self.files = (base / tls.cert_file, base / tls.key_file)
        self.context = ssl_context(tls, base)  # the listening context
        self.context.sni_callback = self._handshake
        self.current = self.context
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (p.stat() for p in self.files))
        except OSError:
            return None

    def _handshake(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        stamp = self._stamp()
        if stamp is not None and stamp != self.stamp:
            try:
                self.current = ssl_context(self.tls, self.base)
            except ConfigError as exc:
                log.warning("certificate not reloaded", extra={"error": exc.errors[0]})
            else:
                log.info("certificate reloaded", extra={"cert_file": str(self.tls.cert_file)})
            self.stamp = stamp
        if self.current is not context:
            connection.context = self.current


def load_web_config(path: Path | None) -> WebConfig:
    """The file's configuration (None: plain HTTP without auth); raises ConfigError listing every problem."""
    if path is None:
        return WebConfig()
    schema = validate_document(WebConfigSchema, load_yaml(path))
    tls = schema.tls_server_config
    return WebConfig(schema, CertificateReloader(tls, path.parent).context if tls is not None else None)
