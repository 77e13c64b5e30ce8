"""The `schedules:` section: stage 1 (`ScheduleSchema`) and stage 2 (`resolve_schedules`, into `Schedule`).

A schedule is resolved into a `Playbook` (the same cooldown, cap, mode, approval and timeout as an
alert-driven one) plus its cron expression and its target, given as the labels an alert would carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from croniter import croniter
from pydantic import Field, field_validator

from pgwarden.config import StrictModel
from pgwarden.durations import Duration
from responder.core import Target, TargetKind

if TYPE_CHECKING:
    from responder.config import Config, Playbook

NAME_RE = r"^[A-Za-z0-9_.:@-]+$"
# What a scheduled TABLE action gets when its target names no table: the action selects tables itself
# (vacuum_analyze with `tables: stale_analyze`).
ANY_TABLE = "*"


class ScheduleSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    cron: str  # five fields, UTC
    catch_up: Duration = Field(default=0.0, ge=0)  # a tick missed by at most this runs once at start-up
    action: str
    target: dict[str, str] = {}  # the labels an alert would carry: dbidentifier/aws_region, target/datname
    params: dict[str, Any] = {}
    mode: Literal["dry-run", "enforce"] | None = None
    cooldown: Duration = 0.0
    max_per_day: int | None = Field(default=None, ge=0)
    require_approval: bool | None = None
    timeout: Duration = Field(default=21600.0, gt=0)  # 6h: scheduled jobs (drills) are long

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value


@dataclass(frozen=True)
class Schedule:
    """A resolved schedule: its playbook (name = the schedule's), its target and its clock."""

    schema: ScheduleSchema
    playbook: Playbook
    labels: dict[str, str]  # the target, as labels (what /actions shows and approval re-resolves)
    target: Target

    @property
    def name(self) -> str:
        return self.schema.name

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment` (UTC)."""
        nxt: datetime = croniter(self.schema.cron, moment.astimezone(UTC)).get_next(datetime)
        return nxt.astimezone(UTC)

    def last_at_or_before(self, moment: datetime) -> datetime:
        """The latest tick at or before `moment`."""
        at = moment.astimezone(UTC)
        if croniter.match(self.schema.cron, at.replace(second=0, microsecond=0)) and at.second == 0:
            return at.replace(microsecond=0)
        prev: datetime = croniter(self.schema.cron, at).get_prev(datetime)
        return prev.astimezone(UTC)


def target_labels(kind: TargetKind, given: dict[str, str]) -> dict[str, str]:
    """The schedule's target as alert labels; a TABLE target without a table selects any (`*`)."""
    labels = dict(given)
    if kind is TargetKind.TABLE:
        labels.setdefault("schemaname", ANY_TABLE)
        labels.setdefault("relname", ANY_TABLE)
    return labels


def resolve_schedules(config: Config, errors: Any) -> tuple[Schedule, ...]:
    """Stage 2 of `schedules:`: each one's action, params and target, errors under `schedules.<i>`."""
    # Imported here: both modules import responder.config, which imports this one.
    from responder.config import MatchSchema, PlaybookSchema, _playbook
    from responder.guards import resolve_target

    taken = {p.name for p in config.playbooks}
    seen: set[str] = set()
    out: list[Schedule] = []
    for i, s in enumerate(config.schema.schedules):
        where = f"schedules.{i}"
        if s.name in taken or s.name in seen:
            errors.add(f"{where}.name", f"duplicate name {s.name!r} (schedules and playbooks share names)")
        seen.add(s.name)
        schema = PlaybookSchema(
            name=s.name,
            match=MatchSchema(alertname=f"schedule:{s.name}"),  # never an alert's: schedules are not matched
            action=s.action,
            params=s.params,
            mode=s.mode,
            cooldown=s.cooldown,
            max_per_day=s.max_per_day,
            require_approval=s.require_approval,
            timeout=s.timeout,
        )
        playbook = _playbook(where, schema, config.schema, config.actions, errors)
        if playbook is None:
            continue
        labels = target_labels(playbook.spec.target_kind, s.target)
        target = resolve_target(playbook, labels, config)
        if target is None:
            errors.add(f"{where}.target", f"names no target {playbook.action} can act on: {s.target}")
            continue
        out.append(Schedule(s, playbook, labels, target))
    return tuple(out)
