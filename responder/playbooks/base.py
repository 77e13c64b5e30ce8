"""What an action is: a typed parameter model, the kind of target it needs, and one async function."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from responder.aws import RdsApi
    from responder.journal import Journal
    from responder.metrics import ResponderMetrics


class ActionParams(BaseModel):
    """Base of every action's parameter model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetKind(StrEnum):
    POSTGRES = "postgres"  # a configured PostgreSQL server (alert label `target`)
    RDS = "rds"  # an RDS instance (alert labels `dbidentifier`, `aws_region`)
    TABLE = "table"  # a table in a database of a configured server (`datname`, `schemaname`, `relname`)


class GuardrailRefused(Exception):
    """The action refuses to act; the journal records outcome `guardrail` with this reason."""


@dataclass(frozen=True)
class PostgresTarget:
    name: str
    conninfo: str = field(repr=False)  # secret: never logged
    display: str  # host:port/dbname
    datname: str | None = None  # the alert's `datname`, when it names one

    @property
    def key(self) -> str:
        return f"pg:{self.name}" + (f"/{self.datname}" if self.datname else "")


@dataclass(frozen=True)
class RdsTarget:
    identifier: str
    region: str

    @property
    def key(self) -> str:
        return f"rds:{self.region}/{self.identifier}"


@dataclass(frozen=True)
class TableTarget:
    server: PostgresTarget
    datname: str
    schemaname: str
    relname: str

    @property
    def key(self) -> str:
        return f"table:{self.server.name}/{self.datname}/{self.schemaname}.{self.relname}"


Target = PostgresTarget | RdsTarget | TableTarget


@dataclass
class ActionContext:
    """Everything one run of an action may use; passed in, never global."""

    action_id: int
    playbook: str
    target: Target
    params: Any
    dry_run: bool
    journal: Journal
    metrics: ResponderMetrics
    log: logging.LoggerAdapter[logging.Logger]
    rds: RdsApi | None = None

    async def save_plan(self, plan: dict[str, Any]) -> None:
        """Journal what is about to be done before doing it (and, in dry-run, instead of doing it)."""
        await self.journal.set_plan(self.action_id, plan)


RunFn = Callable[[ActionContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    params_model: type[ActionParams]
    target_kind: TargetKind
    run: RunFn
    requires_approval_by_default: bool = False
    description: str = ""


class ActionRegistry:
    """The actions a responder knows, by name. An object passed to `make_app`, so tests can add their own."""

    def __init__(self, specs: list[ActionSpec] | None = None) -> None:
        self._specs: dict[str, ActionSpec] = {}
        for spec in specs or []:
            self.register(spec)

    def register(self, spec: ActionSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"action {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(self._specs.values())
