"""The dashboards' building blocks: panel, row, variable and dashboard definitions, and the label matchers
and variables they share. devtools/dashboards/render.py turns them into Grafana's JSON model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE_UID = "pgwarden-prometheus"
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
TAGS = ("pgwarden",)

# Label matchers shared by the panels.
T = 'target=~"$target"'
TD = 'target=~"$target", datname=~"$datname"'
RDS = 'target=~"$target", dbidentifier=~"$dbidentifier"'
RI = 'instance=~"$instance"'
RIP = 'instance=~"$instance", playbook=~"$playbook"'
W = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel: `kind` is timeseries, stat or table (tables run instant queries)."""

    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    description: str = ""
    stack: bool = False
    max: float | None = None


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Variable:
    """A query variable: `label_values(<query>, <label>)`, multi-select with an All of `.*`."""

    name: str
    label: str
    query: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: Sequence[Variable]
    items: Sequence[Panel | Row] = field(default_factory=tuple)


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def top(expr: str, legend: str = "") -> Query:
    return Query(expr, legend, instant=True)


def graph(
    title: str, expr: str, legend: str, unit: str = "short", description: str = "", stack: bool = False
) -> Panel:
    """A time series panel of one query, half a row wide."""
    return Panel(title, [q(expr, legend)], unit=unit, description=description, stack=stack)


def stat(
    title: str,
    expr: str,
    legend: str,
    unit: str = "short",
    width: int = 6,
    description: str = "",
    max: float | None = None,
) -> Panel:
    """A stat panel of one query, 4 high."""
    return Panel(title, [q(expr, legend)], unit, "stat", width, 4, description, max=max)


def table(title: str, expr: str, legend: str, unit: str = "short") -> Panel:
    """A table of one instant query, half a row wide."""
    return Panel(title, [top(expr, legend)], unit, "table")


# ---- variables --------------------------------------------------------------------------------------------

TARGET = Variable("target", "Target", "label_values(pg_up, target)")
DATNAME = Variable(
    "datname", "Database", 'label_values(pg_stat_database_numbackends{target=~"$target"}, datname)'
)
DBIDENTIFIER = Variable(
    "dbidentifier", "RDS instance", 'label_values(rds_instance_info{target=~"$target"}, dbidentifier)'
)
INSTANCE = Variable("instance", "Responder", "label_values(pgwarden_responder_journal_up, instance)")
PLAYBOOK = Variable(
    "playbook", "Playbook", 'label_values(pgwarden_responder_actions_total{instance=~"$instance"}, playbook)'
)
