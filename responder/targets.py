"""What a decision acts on: a configured PostgreSQL server (or one of its databases), an RDS instance, a table.

Each has a `key` (what cooldowns, caps and the one-change-at-a-time rule count by) and a `describe()` (what the
journal and the console show).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgwarden.credentials import Credentials


@dataclass(frozen=True)
class PostgresTarget:
    name: str
    conninfo: str = field(repr=False)  # secret: never logged
    display: str  # host:port/dbname
    datname: str | None = None  # the alert's `datname`, when it names one
    credentials: Credentials | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """`pg:<name>`, and `/<datname>` for a database other than the DSN's: an alert naming the DSN's own
        database and one naming none act on the same database, and count as one for cooldowns and caps."""
        other = self.datname and self.datname != self.dsn_datname
        return f"pg:{self.name}" + (f"/{self.datname}" if other else "")

    @cached_property
    def dsn_datname(self) -> str | None:
        """The database the DSN connects to (libpq's default, the user name, when it names none)."""
        try:
            params = conninfo_to_dict(self.conninfo)
        except psycopg.ProgrammingError:
            return None
        found = params.get("dbname") or params.get("user")
        return str(found) if found else None

    def describe(self) -> str:
        return f"{self.name} ({self.display})" + (f" database {self.datname}" if self.datname else "")


@dataclass(frozen=True)
class RdsTarget:
    identifier: str
    region: str

    @property
    def key(self) -> str:
        return f"rds:{self.region}/{self.identifier}"

    def describe(self) -> str:
        return f"rds {self.region}/{self.identifier}"


@dataclass(frozen=True)
class TableTarget:
    server: PostgresTarget
    datname: str
    schemaname: str
    relname: str

    @property
    def key(self) -> str:
        return f"table:{self.server.name}/{self.datname}/{self.schemaname}.{self.relname}"

    def describe(self) -> str:
        server = f"{self.server.name} ({self.server.display})"
        return f"{server} {self.datname}.{self.schemaname}.{self.relname}"


Target = PostgresTarget | RdsTarget | TableTarget
