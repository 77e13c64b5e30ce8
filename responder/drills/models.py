"""Configuration shapes shared by `restore_drill` params and the `recovery:` section: checks and connection."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

import pglast
from pglast import ast
from pglast.visitors import Visitor
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


# Settings whose change would let a check (or the next one) write.
READ_ONLY_SETTINGS = frozenset({"transaction_read_only", "default_transaction_read_only"})


def read_only_violation(sql: str) -> str | None:
    """Why this check's SQL could leave or change its read-only transaction, or None when it cannot. The SQL is
    parsed by PostgreSQL's own parser (pglast): one statement, no transaction control, no `SET`/`RESET` of the
    transaction's characteristics, no `RESET ALL`/`DISCARD`, no `set_config` of a read-only setting."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        return f"cannot parse the SQL: {exc}"
    if len(statements) != 1:
        return "give exactly one SQL statement"
    statement = statements[0].stmt
    if statement is None:
        return "give exactly one SQL statement"
    if isinstance(statement, ast.TransactionStmt | ast.DiscardStmt):
        return f"transaction control ({type(statement).__name__}) is not allowed in a check"
    if isinstance(statement, ast.VariableSetStmt):
        name = (statement.name or "").lower()
        if name in ("", "transaction", "session characteristics") or name in READ_ONLY_SETTINGS:
            return f"changing the transaction's settings ({name or 'RESET ALL'}) is not allowed in a check"
    if any(_sets_read_only(call) for call in _function_calls(statement)):
        return "set_config(...) of transaction_read_only is not allowed in a check"
    return None


def _function_calls(node: ast.Node) -> list[ast.FuncCall]:
    found: list[ast.FuncCall] = []

    class Calls(Visitor):
        def visit_FuncCall(self, ancestors: Any, call: ast.FuncCall) -> None:
            found.append(call)

    Calls()(node)
    return found


def _sets_read_only(call: ast.FuncCall) -> bool:
    """`set_config('...transaction_read_only', ...)`, schema-qualified or not."""
    if not call.funcname or call.funcname[-1].sval.lower() != "set_config" or not call.args:
        return False
    first = call.args[0]
    value = getattr(getattr(first, "val", None), "sval", None)
    return isinstance(value, str) and value.lower() in READ_ONLY_SETTINGS


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
