"""Build a report: gather the journal rows and the target's catalog, then every section of the period."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from pgwarden.redact import redact_url
from responder.report.catalog import Catalog
from responder.report.model import Period, PeriodName, Report
from responder.report.prometheus import Prometheus
from responder.report.sections import SECTIONS, Inputs, build_section

JournalRows = Callable[[str, float, float], Awaitable[list[dict[str, Any]]]]
"""(action, since, until) -> the journal's rows of that action in the window, newest first."""


async def build_report(
    period_name: PeriodName,
    prometheus_url: str,
    *,
    selector: str = "",
    journal: JournalRows | None = None,
    catalog: Catalog | None = None,
    end: float | None = None,
    source: str | None = None,
) -> Report:
    """The report of the period ending at `end` (now): Prometheus always; the journal's rows and the target's
    catalog (`read_catalog`) when given (their sections say `no data` otherwise)."""
    period = Period(period_name, end if end is not None else time.time())
    drills = vacuums = migrations = advice = None
    if journal is not None:
        drills = await journal("restore_drill", period.start, period.end)
        vacuums = await journal("vacuum_analyze", period.start, period.end)
        migrations = [
            *await journal("migrate", period.start, period.end),
            *await journal("backfill", period.start, period.end),
        ]
        advice = await journal("index_advice", period.start, period.end)
    async with aiohttp.ClientSession() as session:
        prometheus = Prometheus(prometheus_url, session)
        inputs = Inputs(prometheus, selector, period, drills, vacuums, catalog, migrations, advice)
        sections = [await build_section(k, t, b, inputs) for k, t, b in SECTIONS[period_name]]
    return Report(period, redact_url(source or prometheus_url), sections, time.time())
