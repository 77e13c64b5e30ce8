"""Stage 1 of the responder's configuration: the strict schema of responder.yml (shapes, types, unknown keys).

Stage 2, `responder.config.resolve`, turns it into the frozen `Config`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from pgwarden.config import StrictModel
from pgwarden.credentials import DsnSecret, IamAuth, check_dsn_sources
from pgwarden.durations import Duration
from responder.core import Repeat
from responder.drills.models import RecoverySchema
from responder.migrate.settings import MigrationsSchema
from responder.notify.config import NotifySchema
from responder.principals import NAME_RE, PrincipalSchema

Mode = Literal["dry-run", "enforce"]


class RdsSchema(StrictModel):
    """A target's RDS instance (the exporter's `rds:` shape): what `migrate run` snapshots first."""

    identifier: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
    region: str = Field(min_length=1)


class TargetSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: Path | None = None
    dsn_secret: DsnSecret | None = None
    iam_auth: bool | IamAuth = False
    connect_timeout: Duration = 3.0
    rds: RdsSchema | None = None

    @model_validator(mode="after")
    def _one_dsn_source(self) -> TargetSchema:
        check_dsn_sources(self)
        return self


class AwsSchema(StrictModel):
    region: str = Field(min_length=1)
    endpoint_url: str | None = None  # else AWS_ENDPOINT_URL, else AWS
    timeout: Duration = 20.0


class MatchSchema(StrictModel):
    alertname: str | list[str]
    labels: dict[str, str] = {}  # equality matchers
    labels_regex: dict[str, str] = {}  # full-match regular expressions

    @field_validator("labels_regex")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: invalid regular expression: {exc}") from exc
        return value


class ApprovalsSchema(StrictModel):
    """`require_approval: {approvals: n}`: the decision waits for n different approvers (`true` is 1)."""

    approvals: int = Field(ge=1)


class PlaybookSchema(StrictModel):
    name: str = Field(min_length=1, pattern=NAME_RE)
    match: MatchSchema
    action: str
    params: dict[str, Any] = {}
    target: str | None = None  # fixed configured target; else from the alert's labels
    mode: Mode | None = None
    cooldown: Duration = 0.0
    max_per_day: int | None = Field(default=None, ge=0)
    require_approval: bool | ApprovalsSchema | None = None
    timeout: Duration = 300.0
    # once: one decision per firing; while_firing: again in each cooldown window. Default: the action's.
    repeat: Repeat | None = None


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
    require_approval: bool | ApprovalsSchema | None = None
    timeout: Duration = Field(default=21600.0, gt=0)  # 6h: scheduled jobs (drills) are long

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value


class ConsoleSchema(StrictModel):
    """`console:`: where the timeline links each decision's alert to."""

    alertmanager_url: str | None = Field(default=None, pattern=r"^https?://")  # its alerts page
    grafana_url: str | None = Field(default=None, pattern=r"^https?://")  # pgwarden's dashboards there


class ResponderSchema(StrictModel):
    mode: Mode = "dry-run"
    auth: Literal["bearer", "none"] = "bearer"
    token: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    journal: str = "sqlite:///var/lib/pgwarden/journal.db"
    journal_dsn_env: str | None = None  # a PostgreSQL journal DSN from the environment instead
    journal_dsn_secret: DsnSecret | None = None  # or from Secrets Manager (over `journal:`'s, if a URL)
    journal_timeout: Duration = Field(default=2.0, gt=0)  # PostgreSQL journal: connect/acquire timeout
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    approval_timeout: Duration = 3600.0
    max_concurrent_actions: int = Field(default=4, ge=1, le=64)
    shutdown_timeout: Duration = 60.0
    # A replica silent this long is dead: its running actions are interrupted.
    replica_timeout: Duration = 30.0
    # Finished decisions older than this are deleted; at least a day (the daily cap and storage history).
    journal_retention: Duration = Field(default=90 * 86400.0, ge=86400.0)
    targets: list[TargetSchema] = []
    aws: AwsSchema | None = None
    playbooks: list[PlaybookSchema] = []
    schedules: list[ScheduleSchema] = []  # jobs on a clock (responder.scheduling)
    recovery: RecoverySchema | None = None  # what `pgwarden-responder recover` uses
    approvers: list[PrincipalSchema] = []  # may approve and reject; sign in to the console
    viewers: list[PrincipalSchema] = []  # read-only console and reports
    console: ConsoleSchema = ConsoleSchema()  # the console's links to Alertmanager and Grafana
    migrations: MigrationsSchema = MigrationsSchema()  # `pgwarden-responder migrate` (responder.migrate)
    notify: NotifySchema = NotifySchema()  # who hears of each decision (responder.notify)
