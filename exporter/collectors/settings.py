"""pg_settings as pg_settings_<name>, units normalised to seconds and bytes as postgres_exporter does.

Values are `reset_val`: the server's value for a new session, not this session's own SETs (the exporter sets
statement_timeout and lock_timeout for itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import RowsCollector
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Exposition, Family

_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_BYTES = {
    "B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4,
    "4kB": 4096, "8kB": 8192, "16kB": 16384, "32kB": 32768, "64kB": 65536,
    "16MB": 16 * 1024**2, "32MB": 32 * 1024**2, "64MB": 64 * 1024**2,
}  # fmt: skip
_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _integral(value: float) -> float:
    """1024 rather than 1024.0 in the exposition (an int is a float as far as the type goes)."""
    return int(value) if value.is_integer() else value


def setting_metric(name: str, setting: str, unit: str, vartype: str) -> tuple[str, float, str] | None:
    """(metric name, value, unit note) for one row of pg_settings, or None when it is not a number."""
    metric = "pg_settings_" + _NAME.sub("_", name)
    if vartype == "bool":
        return metric, 1 if setting == "on" else 0, ""
    try:
        value = float(setting)
    except ValueError:
        return None
    if unit in _SECONDS:
        seconds = value if value < 0 else value * _SECONDS[unit]
        return metric + "_seconds", _integral(seconds), " [Units converted to seconds.]"
    if unit in _BYTES:
        size = value if value < 0 else value * _BYTES[unit]
        return metric + "_bytes", _integral(size), " [Units converted to bytes.]"
    return metric, _integral(value), ""


class Setting(NamedTuple):
    name: str
    reset_val: str
    unit: str
    short_desc: str
    vartype: str
    pending_restart: bool


PENDING_RESTART = Family(
    "pg_settings_pending_restart",
    "gauge",
    "1 for each setting changed in the configuration (and reloaded) that takes effect only at a restart.",
    ("name",),
    absent_when="no setting waits for a restart",
)
_NUMERIC = ("bool", "integer", "real")


class SettingsCollector(RowsCollector[Setting, CollectorOptions]):
    name = "settings"
    order = 20
    source = "pg_settings"
    families = (
        Family(
            "pg_settings_<name>",
            "gauge",
            "Each numeric or boolean setting; `_seconds`/`_bytes` when it has a unit.",
        ),
        PENDING_RESTART,
    )

    row = Setting
    sql = (
        "SELECT name, reset_val, coalesce(unit, '') AS unit, short_desc, vartype, pending_restart "
        "FROM pg_settings WHERE vartype IN ('bool', 'integer', 'real') OR pending_restart ORDER BY name"
    )

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Setting]]]) -> None:
        plain = out.labels((), ())
        for _, rows in results:
            for s in rows:
                parsed = (
                    setting_metric(s.name, s.reset_val, s.unit, s.vartype) if s.vartype in _NUMERIC else None
                )
                if parsed is not None:
                    metric, value, note = parsed
                    help_text = f"Server Parameter: {s.name}. {s.short_desc}{note}"
                    out.add(Family(metric, "gauge", help_text), plain, value)
            for s in rows:
                if s.pending_restart:
                    out.add(PENDING_RESTART, out.labels(("name",), (s.name,)), 1)
