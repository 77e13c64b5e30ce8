"""Configuration shapes shared by `restore_drill` params and the `recovery:` section: checks and connection."""

from __future__ import annotations

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


class Check(ActionParams):
    name: str = Field(min_length=1, max_length=100)
    sql: str = Field(min_length=1)
    expect: Expect


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
    checks: tuple[Check, ...] = ()
    drain: DrainSpec = DrainSpec()
    secret: SecretSpec | None = None
    hooks: HooksSpec = HooksSpec()

    _unique = field_validator("checks")(unique_names)
