"""The responder's domain core: targets, what an action is, and the narrow context one run of it sees.

A playbook module (`responder/playbooks/<name>.py`) imports only from here (and `rds_guards`, `effects`,
`pgwarden`); the dispatcher implements `ActionContext` and runs `ActionSpec.run`. Every change an action makes
goes through `ActionContext.gate`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

import psycopg
from pydantic import BaseModel, ConfigDict

from pgwarden import postgres
from responder.aws import RdsApi
from responder.effects import EffectGate
from responder.outcomes import Outcome
from responder.targets import PostgresTarget as PostgresTarget
from responder.targets import RdsTarget as RdsTarget
from responder.targets import TableTarget as TableTarget
from responder.targets import Target as Target

# The application_name of every session the responder opens; its own sessions are never signalled.
APPLICATION_NAME = "pgwarden-responder"
CONNECT_TIMEOUT = 5.0  # seconds, for a playbook's session

# Whether a still-firing alert is decided once, or again in every cooldown window (`repeat:`).
Repeat = Literal["once", "while_firing"]


class ActionParams(BaseModel):
    """Base of every action's parameter model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def exactly_one_of(first: str, second: str) -> Callable[[M], M]:
    """A model's after-validator (`model_validator(mode="after")(...)`): exactly one of two fields is given."""

    def check(model: M) -> M:
        if (getattr(model, first) is None) == (getattr(model, second) is None):
            raise ValueError(f"give exactly one of {first} or {second}")
        return model

    return check


class TargetKind(StrEnum):
    POSTGRES = "postgres"  # a configured PostgreSQL server (alert label `target`)
    RDS = "rds"  # an RDS instance (alert labels `dbidentifier`, `aws_region`)
    TABLE = "table"  # a table in a database of a configured server (`datname`, `schemaname`, `relname`)


class GuardrailRefused(Exception):
    """The action refuses to act; the journal records outcome `guardrail` with this reason."""


class ActionFailed(Exception):
    """The action ran and failed; the journal records outcome `failed` with this reason and `result`."""

    def __init__(self, reason: str, result: dict[str, Any]) -> None:
        super().__init__(reason)
        self.result = result


async def connect(server: PostgresTarget, dbname: str | None = None) -> psycopg.AsyncConnection[Any]:
    """An autocommit session on a configured server (in `dbname`, else the DSN's own database)."""
    options = postgres.SessionOptions(APPLICATION_NAME, CONNECT_TIMEOUT, dbname=dbname)
    return await postgres.connect(server.conninfo, options, server.credentials)


P = TypeVar("P", bound=ActionParams)
P_co = TypeVar("P_co", bound=ActionParams, covariant=True)


class ActionContext(Protocol[P_co]):
    """Everything one run of an action may use: its inputs, the journal's plan and history, its counters."""

    @property
    def action_id(self) -> int: ...
    @property
    def playbook(self) -> str: ...
    @property
    def target(self) -> Target: ...
    @property
    def params(self) -> P_co: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]: ...
    @property
    def rds(self) -> RdsApi | None: ...
    @property
    def gate(self) -> EffectGate:
        """The one way to change anything: AWS calls, signals, VACUUM, hooks (see `responder.effects`)."""

    async def save_plan(self, plan: dict[str, Any]) -> None:
        """Journal what is about to be done before doing it (and, in dry-run, instead of doing it)."""

    async def history(self, outcome: Outcome, since: float) -> list[float]:
        """When this action last ended with `outcome` on this target (any replica), newest first."""

    def count(self, counter: str, amount: float = 1.0) -> None:
        """Add to one of the counters the action's spec declares."""

    async def journal_rows(self, action: str, since: float, until: float) -> list[dict[str, Any]]:
        """Read-only: the journal's rows of any action journaled in [since, until), newest first."""


ActionResult = dict[str, Any]
"""What an action returns; journaled as the action's `result`."""


@dataclass(frozen=True)
class ActionSpec(Generic[P]):
    """An action: its parameter model, the kind of target it needs, and one async function.

    `name` defaults to the last part of the name of the module `run` is defined in: a playbook is named after
    its file. `counters` maps a name to its help text; each becomes `pgwarden_responder_<name>_total`.
    """

    params_model: type[P]
    target_kind: TargetKind
    run: Callable[[ActionContext[P]], Awaitable[ActionResult]]
    name: str = field(default="", kw_only=True)
    requires_approval_by_default: bool = False
    repeat_by_default: Repeat = "once"
    # Changes an RDS instance: at most one such action runs on an instance at a time, across playbooks.
    changes_instance: bool = False
    description: str = ""
    counters: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.run.__module__.rpartition(".")[2])


class ActionRegistry:
    """The actions a responder knows, by name. Built by discovery; tests may register their own."""

    def __init__(self, specs: list[ActionSpec[Any]] | None = None) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}
        for spec in specs or []:
            self.register(spec)

    def register(self, spec: ActionSpec[Any]) -> None:
        if spec.name in self._specs:
            raise ValueError(f"action {spec.name!r} is already registered")
        taken = {name for other in self._specs.values() for name in other.counters}
        if clash := taken & set(spec.counters):
            raise ValueError(f"action {spec.name!r}: counter {sorted(clash)[0]!r} is already declared")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec[Any] | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __iter__(self) -> Iterator[ActionSpec[Any]]:
        return iter(self._specs.values())
