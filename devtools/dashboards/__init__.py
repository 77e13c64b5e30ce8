"""pgwarden's Grafana dashboards, built from compact panel definitions, one module per dashboard.

`python -m devtools.dashboards` writes `grafana/dashboards/*.json`; `--check` exits 1 when a committed file
differs from what this module builds (a test checks the same). Edit the definitions here, never the JSON.

Every panel queries the datasource provisioned by `grafana/provisioning/datasources/prometheus.yml` (uid
`DATASOURCE_UID`). Template variables are regex matchers with `allValue: ".*"`, so "All" also matches series
without the label (e.g. `target` when the exporter serves a single server, or RDS instances that AWS
discovery found and no configured target names).
"""

from __future__ import annotations

from devtools.dashboards.overview import OVERVIEW
from devtools.dashboards.panels import DATASOURCE_UID, OUTPUT_DIR, Dashboard
from devtools.dashboards.queries import QUERIES
from devtools.dashboards.rds import RDS_DASHBOARD
from devtools.dashboards.render import render
from devtools.dashboards.responder import RESPONDER
from devtools.dashboards.tables import TABLES

__all__ = ["DASHBOARDS", "DATASOURCE_UID", "OUTPUT_DIR", "outputs"]

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, QUERIES, TABLES, RDS_DASHBOARD, RESPONDER)


def outputs() -> dict[str, str]:
    """File name -> content of every dashboard."""
    return {f"{d.uid}.json": render(d) for d in DASHBOARDS}
