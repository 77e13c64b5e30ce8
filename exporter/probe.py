"""`/probe?target=<DSN>&auth_module=<name>`: postgres_exporter's multi-target probes of servers not configured.

The target is read as postgres_exporter reads it (a `postgresql://` URL, `key=value` pairs, or `host:port/db`);
the auth module's user, password and `options` are put into it. Each probed (target, auth module) keeps a
`TargetScraper` of its own, with a configured target's connection budget, idle timeout and connect timeout,
dropped after PROBE_IDLE unused. With `probe_targets:` in the --config.file, a target whose host is not
allowed is refused (403) before any connection is tried; a host allowed by CIDR is connected to at the
address that was checked (libpq `hostaddr`), so a DNS answer cannot change between the check and the connect.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from exporter.assemble import scheduled_collectors
from exporter.config import ExporterConfig
from exporter.exposition import Fragment
from exporter.scrape import TargetScraper
from exporter.target import DatabasesConfig, Target, TargetConfig
from exporter.upstream_config import AuthModule, ProbeAllowlist
from pgwarden.config import Errors
from pgwarden.credentials import DsnSecret, read_secret, resolve_credentials, secret_params
from pgwarden.dsn import describe_dsn

PROBE_IDLE = 600.0  # seconds a probed target's scraper (and its connections) outlives its last probe
MAX_PROBED = 512  # probed targets kept at once; the least recently probed one goes first
_KEY_VALUE = re.compile(r"^ *[a-zA-Z0-9]+ *= *[^= ]+")  # postgres_exporter's test for a key=value DSN
_NAME = re.compile(r"[^A-Za-z0-9_.:/@-]")


class ProbeError(Exception):
    """A probe that cannot be made; `status` is the HTTP answer (400 as postgres_exporter, 403 not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProbeSettings:
    auth_modules: Mapping[str, AuthModule] = field(default_factory=dict)
    allowlist: ProbeAllowlist | None = None
    databases: DatabasesConfig = field(default_factory=DatabasesConfig)
    max_connections: int | None = None


def looks_like_dsn(target: str) -> bool:
    """A URL, key=value pairs, or host with a port or a database: not a bare name (a configured target's)."""
    return target.startswith(("postgresql://", "postgres://")) or bool(
        _KEY_VALUE.match(target) or re.search(r"[:/]", target)
    )


def target_params(target: str) -> dict[str, Any]:
    """libpq's parameters of a probe's target, as postgres_exporter's ParseDSN reads it."""
    if target.startswith(("postgresql://", "postgres://")) or _KEY_VALUE.match(target):
        conninfo = target
    else:
        conninfo = "postgresql://" + target
    try:
        return {k: v for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    except Exception:
        raise ProbeError(400, "could not configure dsn for target: could not understand DSN") from None


def module_params(module: AuthModule, env: Mapping[str, str]) -> dict[str, str]:
    """The user, password (from the module, its file or its variable) and options an auth module sets."""
    u = module.userpass
    params = dict(module.options)
    if u.username:
        params["user"] = u.username
    password = u.password
    if u.password_file is not None:
        try:
            password = Path(u.password_file).read_text().strip()
        except OSError as exc:
            raise ProbeError(400, f"auth module password_file {u.password_file}: {exc.strerror}") from None
    elif u.password_env is not None:
        password = env.get(u.password_env, "")
        if not password:
            raise ProbeError(400, f"auth module password_env {u.password_env} is not set")
    if password:
        params["password"] = password
    return params


def _user_and_password(secret: DsnSecret) -> str:
    """A secret's user and password only: the probe's target says where to connect."""
    params = secret_params(read_secret(secret), secret.secret_id)
    return make_conninfo("", **{k: v for k, v in params.items() if k in ("user", "password")})


async def allowed_address(
    params: Mapping[str, Any], allow: ProbeAllowlist, discovered: set[str]
) -> str | None:
    """None when the target's host is allowed by name; the address to connect to when allowed by CIDR;
    ProbeError 403 when it is not allowed."""
    hosts = [h for h in str(params.get("host") or "").split(",") if h]
    if len(hosts) != 1 or params.get("hostaddr"):
        raise ProbeError(403, "probe target not allowed: give one host, and no hostaddr")
    host = hosts[0].lower()
    if any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allow.hosts):
        return None
    if allow.discovered_rds and host in discovered:
        return None
    if allow.cidrs and not host.startswith("/"):
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, params.get("port") or 5432)
        except OSError:
            infos = []
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if addresses and all(any(a in net for net in allow.cidrs) for a in addresses):
            return str(addresses[0])
    raise ProbeError(403, f"probe target not allowed: {host} is not in probe_targets")


class Probes:
    """The probed targets' scrapers, made on a target's first probe and closed after PROBE_IDLE unused."""

    def __init__(
        self,
        settings: ProbeSettings,
        config: ExporterConfig,
        discovered: Callable[[], set[str]] = set,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.discovered = discovered
        self.env = os.environ if env is None else env
        self._scrapers: dict[tuple[str, str], tuple[TargetScraper, float]] = {}
        self._lock = asyncio.Lock()

    async def scrape(
        self, target: str, module_name: str, const_labels: str, deadline: float | None
    ) -> list[Fragment]:
        scraper = await self._scraper(target, module_name)
        return await scraper.scrape(const_labels, deadline)

    async def _scraper(self, target: str, module_name: str) -> TargetScraper:
        module: AuthModule | None = None
        if module_name:
            module = self.settings.auth_modules.get(module_name)
            if module is None:
                raise ProbeError(400, f"auth_module {module_name} not found")
            if module.incomplete():
                raise ProbeError(400, f"auth_module {module_name} has no username or password")
        key = (target, module_name)
        async with self._lock:
            await self._evict(time.monotonic())
            found = self._scrapers.get(key)
            if found is None:
                scraper = TargetScraper(
                    await self._target(target, module), self.config, scheduled_collectors(self.config)
                )
                found = (scraper, 0.0)
            self._scrapers[key] = (found[0], time.monotonic())
            return found[0]

    async def _target(self, target: str, module: AuthModule | None) -> Target:
        params = target_params(target)
        if module is not None:
            params.update(module_params(module, self.env))
        allow = self.settings.allowlist
        if allow is not None:
            address = await allowed_address(params, allow, self.discovered())
            if address is not None:
                params["hostaddr"] = address
        conninfo = make_conninfo("", **params)
        credentials = None
        if module is not None and (module.dsn_secret is not None or module.iam_auth is not False):
            errors = Errors()
            resolved = await asyncio.to_thread(
                resolve_credentials,
                conninfo,
                module.dsn_secret,
                module.iam_auth,
                "auth_module",
                errors,
                env=self.env,
                fetch=_user_and_password,
            )
            if resolved is None:
                raise ProbeError(400, "; ".join(errors.lines))
            conninfo, credentials = resolved
        display = describe_dsn(conninfo)
        config = TargetConfig(
            name=_NAME.sub("_", display),
            dsn=display,  # a placeholder: the connection string is Target.conninfo (it holds the password)
            databases=self.settings.databases,
            **({"max_connections": self.settings.max_connections} if self.settings.max_connections else {}),
        )
        return Target(config.name, conninfo, display, config, credentials)

    async def _evict(self, now: float) -> None:
        by_age = sorted(self._scrapers.items(), key=lambda item: item[1][1])
        excess = len(by_age) - MAX_PROBED + 1
        for i, (key, (scraper, used)) in enumerate(by_age):
            if now - used > PROBE_IDLE or i < excess:
                del self._scrapers[key]
                await scraper.close()

    async def close(self) -> None:
        scrapers = [s for s, _ in self._scrapers.values()]
        self._scrapers = {}
        await asyncio.gather(*(s.close() for s in scrapers), return_exceptions=True)
