"""One server to scrape: its `targets:` entry and, once its DSN is resolved, the `Target` the scrape connects to.

A leaf of the exporter: it imports nothing of it, so the connection pool, the collectors and the configuration
can all name a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, model_validator

from pgwarden.config import StrictModel
from pgwarden.credentials import Credentials, DsnSecret, IamAuth, check_dsn_sources
from pgwarden.durations import Duration

# Never visited by the per-database collectors, unless a target's `databases.include` names one.
ALWAYS_EXCLUDED_DATABASES = ("template0", "template1", "rdsadmin")


class DatabasesConfig(StrictModel):
    """Which databases of a server the per-database collectors visit (empty include = all)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class RDSConfig(StrictModel):
    identifier: str = Field(min_length=1)
    region: str = Field(min_length=1)
    backup_regions: tuple[str, ...] = ()
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")


class TargetConfig(StrictModel):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: Path | None = None
    dsn_secret: DsnSecret | None = None
    iam_auth: bool | IamAuth = False
    databases: DatabasesConfig = DatabasesConfig()
    rds: RDSConfig | None = None
    connect_timeout: Duration = 3.0
    pool_size: int = Field(default=2, ge=1, le=16)  # per database
    max_connections: int = Field(default=3, ge=1, le=64)  # all databases together
    idle_timeout: Duration = 10.0  # then an idle connection closes (one to the DSN's database stays)

    @model_validator(mode="after")
    def _one_dsn_source(self) -> TargetConfig:
        check_dsn_sources(self)
        return self


@dataclass(frozen=True)
class Target:
    """A configured server with its secret DSN resolved; `display` is safe to log. `credentials`, with a
    Secrets Manager secret or IAM auth, gives each new connection its current password."""

    name: str
    conninfo: str
    display: str
    config: TargetConfig
    credentials: Credentials | None = field(default=None, compare=False, repr=False)
