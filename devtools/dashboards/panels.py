"""The dashboards' building blocks: panel, row, variable and dashboard definitions, the label matchers and
variables they share, and the rendering into Grafana's JSON model (schema 39)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASOURCE_UID = "pgwarden-prometheus"
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": DATASOURCE_UID}
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
SCHEMA_VERSION = 39
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

# ---- rendering --------------------------------------------------------------------------------------------


def _variable(var: Variable) -> dict[str, Any]:
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": var.query,
        "hide": 0,
        "includeAll": True,
        "label": var.label,
        "multi": True,
        "name": var.name,
        "options": [],
        "query": {"query": var.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for n, query in enumerate(panel.queries):
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
            "refId": chr(ord("A") + n),
        }
        if query.instant:
            target["format"] = "table"
        targets.append(target)
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.max is not None:
        defaults["min"], defaults["max"] = 0, panel.max
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 20 if panel.stack else 10,
            "lineWidth": 1,
            "showPoints": "never",
            "stacking": {"group": "A", "mode": "normal" if panel.stack else "none"},
        }
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        options = {
            "legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {"colorMode": "value", "graphMode": "area", "reduceOptions": {"calcs": ["lastNotNull"]}}
    elif panel.kind == "table":
        options = {"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]}
    result: dict[str, Any] = {
        "datasource": DATASOURCE,
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": options,
        "targets": targets,
        "title": panel.title,
        "type": panel.kind,
    }
    if panel.kind == "table":
        result["transformations"] = [
            {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}
        ]
    return result


def build(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, laid out left to right in rows of 24 columns."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, item in enumerate(dashboard.items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append(
                {
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "id": panel_id,
                    "panels": [],
                    "title": item.title,
                    "type": "row",
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            y += row_height
            x = row_height = 0
        panels.append(_panel(item, panel_id, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    links = [
        {
            "asDropdown": True,
            "includeVars": True,
            "keepTime": True,
            "tags": list(TAGS),
            "title": "pgwarden",
            "type": "dashboards",
        }
    ]
    return {
        "annotations": {"list": []},
        "description": dashboard.description,
        "editable": True,
        "graphTooltip": 1,
        "links": links,
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(TAGS),
        "templating": {"list": [_variable(v) for v in dashboard.variables]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
    }


def render(dashboard: Dashboard) -> str:
    return json.dumps(build(dashboard), indent=2, sort_keys=True) + "\n"
