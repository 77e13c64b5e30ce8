"""Configuration shapes shared by `restore_drill` params and the `recovery:` section: checks and connection."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pgwarden.durations import Duration
from responder.core import ActionParams, exactly_one_of

SourceKind = Literal["latest_snapshot", "latest_automated_snapshot", "point_in_time", "cross_region_copy"]


class Expect(ActionParams):
    """What a check's value (the first column of the first row) must be."""

    min: float | None = None
    max: float | None = None
    equals: float | str | None = None

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give at least one of min, max or equals")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    def describe(self) -> dict[str, float | str]:
        return self.model_dump(exclude_none=True)


# Statements that end, open or change the read-only transaction a check runs in (matched at a statement's start).
TRANSACTION_CONTROL = re.compile(
    r"^(begin|start\s+transaction|commit|end|abort|rollback|savepoint|release|prepare\s+transaction"
    r"|set\s+(session\s+|local\s+)?transaction|set\s+session\s+characteristics|reset\s+all|discard"
    r"|(set|reset)\s+(session\s+|local\s+)?(default_)?transaction_read_only)\b",
    re.IGNORECASE,
)
SET_CONFIG = re.compile(r"\bset_config\s*\(", re.IGNORECASE)
_SQL_TOKENS = re.compile(
    r"(?P<line_comment>--[^\n]*)"
    r"|(?P<block_comment>/\*)"
    r"|(?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$)"
    r"|(?P<escape_string>[eE]'(?:[^'\\]|\\.|'')*')"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<identifier>\"(?:[^\"]|\"\")*\")",
    re.DOTALL,
)


def strip_sql(sql: str) -> tuple[str, list[str]]:
    """The SQL with comments removed and string literals and quoted identifiers replaced by placeholders,
    and the literals' contents. ValueError for an unterminated comment, string or dollar quote."""
    code: list[str] = []
    literals: list[str] = []
    pos = 0
    while (match := _SQL_TOKENS.search(sql, pos)) is not None:
        code.append(sql[pos : match.start()])
        kind, end = match.lastgroup, match.end()
        if kind == "line_comment":
            code.append(" ")
        elif kind == "block_comment":  # PostgreSQL's block comments nest
            depth, i = 1, end
            while depth and i < len(sql):
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise ValueError("unterminated /* comment")
            code.append(" ")
            end = i
        elif match.group("dollar") is not None:
            close = sql.find(match.group("dollar"), end)
            if close < 0:
                raise ValueError(f"unterminated {match.group('dollar')} quote")
            literals.append(sql[end:close])
            code.append(" '' ")
            end = close + len(match.group("dollar"))
        elif kind in ("escape_string", "string"):
            literals.append(match.group(kind)[1:-1] if kind == "string" else match.group(kind)[2:-1])
            code.append(" '' ")
        else:
            code.append(' "" ')
        pos = end
    rest = sql[pos:]
    if "'" in rest or '"' in rest or "/*" in rest:
        raise ValueError("unterminated string, quoted identifier or comment")
    code.append(rest)
    return "".join(code), literals


def read_only_violation(sql: str) -> str | None:
    """Why this check's SQL could leave or change its read-only transaction, or None when it cannot."""
    try:
        code, literals = strip_sql(sql)
    except ValueError as exc:
        return f"cannot read the SQL: {exc}"
    statements = [s.strip() for s in code.split(";") if s.strip()]
    if len(statements) != 1:
        return "give exactly one SQL statement"
    if (match := TRANSACTION_CONTROL.match(statements[0])) is not None:
        return f"transaction control ({' '.join(match.group(0).split()).upper()}) is not allowed in a check"
    if SET_CONFIG.search(code) and any("transaction_read_only" in lit.lower() for lit in literals):
        return "set_config(...) of transaction_read_only is not allowed in a check"
    return None


class Check(ActionParams):
    """One SQL check: a single read-only statement whose first value must meet `expect`."""

    name: str = Field(min_length=1, max_length=100)
    sql: str = Field(min_length=1)
    expect: Expect

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        if (why := read_only_violation(sql)) is not None:
            raise ValueError(why)
        return sql


class ConnectSpec(ActionParams):
    """How checks reach a restored instance: a libpq DSN whose host and port become the instance's endpoint.

    `host_override`/`port_override` replace the endpoint instead: a test and demo knob, for an endpoint that
    does not resolve (moto's) or a tunnel.
    """

    dsn_env: str = Field(min_length=1)
    host_override: str | None = None
    port_override: int | None = Field(default=None, ge=1, le=65535)
    connect_timeout: Duration = Field(default=10.0, gt=0)
    connect_retries_for: Duration = Field(default=120.0, ge=0)  # a new endpoint may take a while to resolve
    statement_timeout: Duration = Field(default=300.0, gt=0)

    @field_validator("host_override")
    @classmethod
    def _host_only(cls, host: str | None) -> str | None:
        if host is None:
            return None
        if not host or "/" in host or any(c.isspace() for c in host):
            raise ValueError("give a host name or an IP address (no port, no path, no spaces)")
        if ":" in host:
            bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            try:
                ipaddress.IPv6Address(bare)
            except ValueError:
                raise ValueError("give the port in port_override") from None
        return host


class PointInTime(ActionParams):
    """`before`: LatestRestorableTime minus this; or an absolute `at` (RFC 3339)."""

    before: Duration | None = None
    at: str | None = None

    _one = model_validator(mode="after")(exactly_one_of("before", "at"))


def unique_names(checks: tuple[Check, ...]) -> tuple[Check, ...]:
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError("two checks have the same name")
    return checks


class HooksSpec(ActionParams):
    """Commands (argv lists, no shell) `recover --swap` runs; each gets PGWARDEN_* variables."""

    maintenance_on: tuple[str, ...] = ()
    maintenance_off: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    timeout: Duration = Field(default=300.0, gt=0)


class DrainSpec(ActionParams):
    """Before the swap: wait until production has at most `max_connections` client sessions (besides ours)."""

    timeout: Duration = Field(default=300.0, gt=0)
    max_connections: int = Field(default=0, ge=0)


class SecretSpec(ActionParams):
    """A Secrets Manager secret (JSON with `host` and `port`) that names the production endpoint."""

    secret_id: str = Field(min_length=1)
    region: str | None = None


class RecoverySchema(ActionParams):
    """The `recovery:` section: what `pgwarden-responder recover` uses."""

    instance_class: str | None = None  # default: production's class (`--class` overrides)
    db_subnet_group: str | None = None  # default: production's
    vpc_security_group_ids: tuple[str, ...] = ()  # default: production's
    wait_timeout: Duration = Field(default=7200.0, gt=0)
    connect: ConnectSpec
    checks: tuple[Check, ...] = Field(min_length=1)  # a swap without a comparison is never safe
    drain: DrainSpec = DrainSpec()
    secret: SecretSpec | None = None
    hooks: HooksSpec = HooksSpec()

    _unique = field_validator("checks")(unique_names)
