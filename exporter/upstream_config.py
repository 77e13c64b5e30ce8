"""postgres_exporter's configuration file (`--config.file`, default `postgres_exporter.yml`): `auth_modules`.

Read as postgres_exporter reads it (unknown keys are errors: its decoder sets KnownFields), with what pgwarden
adds for fleets (postgres_exporter #1386, #1063): an auth module's password from a file, an environment
variable, a Secrets Manager secret (`dsn_secret:`) or an RDS IAM token (`iam_auth:`), and `probe_targets:`,
the allowlist of what `/probe?target=` may connect to. A missing file is what it is to postgres_exporter: a
warning, and /probe then takes DSNs without auth modules. pgwarden's own configuration (`--config`) is a
different file; both may be given: `--config` says what /metrics scrapes, `--config.file` how /probe connects.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Literal

from prometheus_client import Gauge
from pydantic import Field, model_validator

from exporter.config import ConfigError
from exporter.exposition import Family
from pgwarden.config import StrictModel, load_yaml, validate_document
from pgwarden.credentials import DsnSecret, IamAuth

log = logging.getLogger("pgwarden.exporter")

# postgres_exporter's own families for its configuration file (config/config.go), served by prometheus_client
CONFIG_FAMILIES = (
    Family(
        "postgres_exporter_config_last_reload_successful",
        "gauge",
        "Postgres exporter config loaded successfully.",
    ),
    Family(
        "postgres_exporter_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Timestamp of the last successful configuration reload.",
    ),
)
RELOAD_SUCCESS, RELOAD_TIME = (Gauge(f.name, f.help) for f in CONFIG_FAMILIES)


class UserPass(StrictModel):
    """`userpass:`; pgwarden: `password_file` or `password_env` instead of `password`."""

    username: str = ""
    password: str = ""
    password_file: Path | None = None
    password_env: str | None = Field(default=None, min_length=1)


class AuthModule(StrictModel):
    """One `auth_modules` entry: credentials and libpq `options` (sslmode, ...) for the DSN a probe names."""

    type: Literal["userpass"]
    userpass: UserPass = UserPass()
    options: dict[str, str] = {}
    dsn_secret: DsnSecret | None = None  # pgwarden: user and password from Secrets Manager (DSN or RDS JSON)
    iam_auth: bool | IamAuth = False  # pgwarden: an RDS IAM token as the password

    @model_validator(mode="after")
    def _one_password_source(self) -> AuthModule:
        u = self.userpass
        sources = [
            name
            for name, given in (
                ("userpass.password", bool(u.password)),
                ("userpass.password_file", u.password_file is not None),
                ("userpass.password_env", u.password_env is not None),
                ("dsn_secret", self.dsn_secret is not None),
                ("iam_auth", self.iam_auth is not False),
            )
            if given
        ]
        if len(sources) > 1:
            raise ValueError(f"give one password source, not {' and '.join(sources)}")
        return self

    def incomplete(self) -> bool:
        """No user name or no password: postgres_exporter answers this module's probes 400."""
        if self.dsn_secret is not None:  # the secret may hold both
            return False
        u = self.userpass
        has_password = bool(u.password) or u.password_file is not None or u.password_env is not None
        return not u.username or not (has_password or self.iam_auth is not False)


class ProbeAllowlist(StrictModel):
    """`probe_targets:` (pgwarden): a probed DSN's host must be one of `hosts` (shell patterns), lie in one of
    `cidrs`, or be the endpoint of an RDS instance the AWS poller discovered (`discovered_rds`)."""

    hosts: tuple[str, ...] = ()
    cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    discovered_rds: bool = False


class UpstreamConfig(StrictModel):
    auth_modules: dict[str, AuthModule] = {}
    probe_targets: ProbeAllowlist | None = None


def load_upstream_config(path: Path | None, given: bool) -> UpstreamConfig:
    """The file, validated; a missing one (given or the default) is a warning and an empty configuration, as
    in postgres_exporter (postgres_exporter_config_last_reload_successful 0 then)."""
    if path is None:
        return _loaded(UpstreamConfig())
    if not path.exists():
        if given:
            log.warning("error loading config: the file does not exist; /probe takes no auth_module",
                        extra={"file": str(path)})  # fmt: skip
        RELOAD_SUCCESS.set(0)
        return UpstreamConfig()
    data = load_yaml(path)
    if isinstance(data, dict) and "targets" in data:
        raise ConfigError([f"{path}: `targets` is pgwarden's configuration: give that file with --config"])
    try:
        return _loaded(validate_document(UpstreamConfig, data or {}))
    except ConfigError as exc:
        raise ConfigError([f"{path}: {line}" for line in exc.errors]) from None


def _loaded(config: UpstreamConfig) -> UpstreamConfig:
    RELOAD_SUCCESS.set(1)
    RELOAD_TIME.set_to_current_time()
    return config
