"""The Grafana community dashboard the tests compare against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Grafana community dashboard 9628, in the shared folder beside the repository (a clone may stand alone).
COMMUNITY_DASHBOARD = (
    Path(__file__).resolve().parents[3] / "shared" / "compat" / "grafana-dashboard-9628-rev8.json"
)


def community_dashboard(path: Path = COMMUNITY_DASHBOARD) -> dict[str, Any]:
    """The dashboard's JSON; the test skips when the file is absent. A fixture, not a service: this holds
    under PGWARDEN_REQUIRE_SERVICES=1 too (CI has the shared folder, so there the tests always run)."""
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared folder is not beside this clone)")
    board: dict[str, Any] = json.loads(path.read_text())
    return board
