"""The maintenance report: the runbook's weekly, monthly and quarterly checklists, one section each, built
from Prometheus range queries, the journal and read-only queries to the target."""

from __future__ import annotations

from responder.report.builder import JournalRows, build_report
from responder.report.catalog import catalog_at
from responder.report.model import PERIOD_SECONDS, Period, Report, Section, Table
from responder.report.render import to_html, to_markdown

__all__ = [
    "PERIOD_SECONDS",
    "JournalRows",
    "Period",
    "Report",
    "Section",
    "Table",
    "build_report",
    "catalog_at",
    "to_html",
    "to_markdown",
]
