"""One function per checklist item of the runbook, by period; each returns a `Section` with a verdict."""

from __future__ import annotations

from responder.report.model import Section, no_data
from responder.report.prometheus import PrometheusError
from responder.report.sections.common import Inputs, SectionBuilder, drill_section
from responder.report.sections.monthly import table_bloat, vacuum_age, vacuum_runs
from responder.report.sections.quarterly import index_review, instance_sizing, security_patches
from responder.report.sections.weekly import connection_pool, index_usage, slow_queries

__all__ = ["SECTIONS", "Inputs", "build_section"]


SECTIONS: dict[str, list[tuple[str, str, SectionBuilder]]] = {
    "weekly": [
        ("slow_queries", "Slow queries", slow_queries),
        ("index_usage", "Index usage", index_usage),
        ("backup_tests", "Backup test results", drill_section()),
        ("connection_pool", "Connection pool", connection_pool),
    ],
    "monthly": [
        ("table_bloat", "Table bloat", table_bloat),
        ("vacuum_age", "Vacuum and analyze age", vacuum_age),
        ("vacuum_runs", "Scheduled VACUUM ANALYZE runs", vacuum_runs),
        ("dr_test", "Disaster-recovery test", drill_section()),
    ],
    "quarterly": [
        ("index_review", "Index review", index_review),
        ("instance_sizing", "Instance sizing", instance_sizing),
        ("security_patches", "Security patches", security_patches),
        (
            "cross_region",
            "Cross-region recovery test",
            drill_section(cross_region_only=True),
        ),
    ],
}


async def build_section(key: str, title: str, builder: SectionBuilder, q: Inputs) -> Section:
    """One section; a Prometheus that fails answers `no data` with the reason, never a verdict."""
    try:
        return await builder(q, key, title)
    except PrometheusError as exc:
        return no_data(key, title, f"Prometheus did not answer ({exc})")
