"""The dashboards' definitions rendered into Grafana's JSON model with grafana-foundation-sdk's typed builders.

The SDK build is pinned to Grafana 11.2 (the compose stack's Grafana; schema 39). Panels are laid out left to
right in rows of 24 columns; positions are computed here and given to the SDK explicitly, so a panel that
does not fit the rest of a row starts the next one.
"""

from __future__ import annotations

import json
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from devtools.dashboards.panels import DATASOURCE_UID, TAGS, Dashboard, Panel, Query, Row, Variable

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
GRID_COLUMNS = 24

PanelBuilder = TypeVar("PanelBuilder", timeseries.Panel, stat.Panel, table.Panel)


def _variable(var: Variable) -> dashboard_builders.QueryVariable:
    """Multi-select with an All of `.*`, refreshed when the time range changes."""
    return (
        dashboard_builders.QueryVariable(var.name)
        .label(var.label)
        .datasource(DATASOURCE)
        .query({"query": var.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .options([])
        .hide(model.VariableHide.DONT_HIDE)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .regex("")
    )


def _target(query: Query, index: int) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend or "__auto")
        .ref_id(chr(ord("A") + index))
    )
    return target.instant().format(PromQueryFormat.TABLE) if query.instant else target.range()


def _timeseries(panel: Panel) -> timeseries.Panel:
    stacking = common.StackingMode.NORMAL if panel.stack else common.StackingMode.NONE
    legend = (
        common_builders.VizLegendOptions()
        .calcs(["lastNotNull", "max"])
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    tooltip = (
        common_builders.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )
    return (
        timeseries.Panel()
        .draw_style(common.GraphDrawStyle.LINE)
        .fill_opacity(20 if panel.stack else 10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
        .stacking(common_builders.StackingConfig().group("A").mode(stacking))
        .legend(legend)
        .tooltip(tooltip)
    )


def _stat() -> stat.Panel:
    return (
        stat.Panel()
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _table() -> table.Panel:
    """Latest values, largest first, without the Time and __name__ columns."""
    hidden = {"excludeByName": {"Time": True, "__name__": True}}
    return (
        table.Panel()
        .show_header(True)
        .sort_by([common_builders.TableSortByFieldState().display_name("Value").desc(True)])
        .with_transformation(model.DataTransformerConfig(id_val="organize", options=hidden))
    )


def _fill(builder: PanelBuilder, panel: Panel, panel_id: int, grid: model.GridPos) -> PanelBuilder:
    """What every kind of panel has: id, title, position, datasource, unit, range and queries."""
    builder.id(panel_id).title(panel.title).description(panel.description).grid_pos(grid)
    builder.datasource(DATASOURCE).unit(panel.unit)
    if panel.max is not None:
        builder.min(0).max(panel.max)
    for index, query in enumerate(panel.queries):
        builder.with_target(_target(query, index))
    return builder


def _panel(panel: Panel, panel_id: int, grid: model.GridPos) -> timeseries.Panel | stat.Panel | table.Panel:
    if panel.kind == "timeseries":
        return _fill(_timeseries(panel), panel, panel_id, grid)
    if panel.kind == "stat":
        return _fill(_stat(), panel, panel_id, grid)
    if panel.kind == "table":
        return _fill(_table(), panel, panel_id, grid)
    raise ValueError(f"{panel.title}: unknown panel kind {panel.kind!r}")


def build(dashboard: Dashboard) -> model.Dashboard:
    """The dashboard's model, laid out left to right in rows of 24 columns."""
    links = (
        dashboard_builders.DashboardLink("pgwarden")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags(list(TAGS))
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )
    builder = (
        dashboard_builders.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .annotations([])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(links)
        .refresh("1m")
        .tags(list(TAGS))
        .time("now-6h", "now")
        .timezone("")
        .version(1)
    )
    for var in dashboard.variables:
        builder.with_variable(_variable(var))
    x = y = row_height = 0
    for panel_id, item in enumerate(dashboard.items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            row = dashboard_builders.Row(item.title).id(panel_id).collapsed(False)
            builder.with_row(row.grid_pos(model.GridPos(h=1, w=GRID_COLUMNS, x=0, y=y)))
            y += 1
            continue
        if x + item.width > GRID_COLUMNS:
            y += row_height
            x = row_height = 0
        builder.with_panel(_panel(item, panel_id, model.GridPos(h=item.height, w=item.width, x=x, y=y)))
        x += item.width
        row_height = max(row_height, item.height)
    return builder.build()


def render(dashboard: Dashboard) -> str:
    return json.dumps(build(dashboard), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
