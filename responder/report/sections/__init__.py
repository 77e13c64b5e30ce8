"""One function per checklist item of the runbook, by period; each returns a `Section` with a verdict."""

from __future__ import annotations

import logging
from dataclasses import replace

from pgwarden.redact import redact
from responder.report.model import Section, Table, no_data
from responder.report.prometheus import PrometheusError
from responder.report.sections.advice import index_advice
from responder.report.sections.common import Inputs, SectionBuilder, drill_section
from responder.report.sections.migrations import schema_migrations
from responder.report.sections.monthly import table_bloat, vacuum_age, vacuum_horizon, vacuum_runs
from responder.report.sections.quarterly import index_review, instance_sizing, security_patches
from responder.report.sections.weekly import connection_pool, index_usage, slow_queries

__all__ = ["SECTIONS", "Inputs", "build_section"]


SECTIONS: dict[str, list[tuple[str, str, SectionBuilder]]] = {
    "weekly": [
        ("slow_queries", "Slow queries", slow_queries),
        ("index_usage", "Index usage", index_usage),
        ("backup_tests", "Backup test results", drill_section()),
        ("connection_pool", "Connection pool", connection_pool),
        ("schema_migrations", "Schema migrations", schema_migrations),
        ("index_advice", "Query plans and index advice", index_advice),
    ],
    "monthly": [
        ("table_bloat", "Table bloat", table_bloat),
        ("vacuum_age", "Vacuum and analyze age", vacuum_age),
        ("vacuum_horizon", "What holds back vacuum", vacuum_horizon),
        ("vacuum_runs", "Scheduled VACUUM ANALYZE runs", vacuum_runs),
        ("dr_test", "Disaster-recovery test", drill_section()),
    ],
    "quarterly": [
        ("index_review", "Index review", index_review),
        ("instance_sizing", "Instance sizing", instance_sizing),
        ("security_patches", "Security patches", security_patches),
        ("index_advice", "Query plans and index advice", index_advice),
        (
            "cross_region",
            "Cross-region recovery test",
            drill_section(cross_region_only=True),
        ),
    ],
}


log = logging.getLogger(__name__)


async def build_section(key: str, title: str, builder: SectionBuilder, q: Inputs) -> Section:
    """One section; a Prometheus that fails answers `no data` with the reason, never a verdict, and a
    section that fails on its data (a hostile name, say) says so without failing the rest of the report.
    Its reason and table cells never show a password (an error quoting a DSN or a URL)."""
    try:
        section = await builder(q, key, title)
    except PrometheusError as exc:
        section = no_data(key, title, f"Prometheus did not answer ({exc})")
    except Exception as exc:
        log.exception("report section not built", extra={"section": key})
        section = no_data(key, title, f"the section could not be built ({type(exc).__name__}: {exc})")
    section.reason = redact(section.reason)
    section.tables = [_redacted(t) for t in section.tables]
    return section


def _redacted(table: Table) -> Table:
    return replace(table, rows=[tuple(redact(cell) for cell in row) for row in table.rows])
