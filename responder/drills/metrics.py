"""The `pgwarden_drill_*` gauges. The `last_*` ones are read from the journal (the responder may have
restarted since the drill), the instance counts from the sweeper's last look at RDS."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from responder.journal import Journal
from responder.outcomes import Outcome

ACTION = "restore_drill"
LOOKBACK = 35 * 86400  # older drills are not read: a drill older than that is as good as none
RUN_OUTCOMES = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.INTERRUPTED)

DRILL_LABELS = ("schedule", "dbidentifier", "source")  # the families with one value per drill

# name -> (labels, help): what tests/alerts checks the drill alerts against.
DRILL_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "pgwarden_drill_last_run_timestamp_seconds": (
        DRILL_LABELS,
        "When the last restore drill (succeeded, failed or interrupted) finished.",
    ),
    "pgwarden_drill_last_success_timestamp_seconds": (
        DRILL_LABELS,
        "When the last successful restore drill finished; 0 when none within 35 days.",
    ),
    "pgwarden_drill_restore_seconds": (
        DRILL_LABELS,
        "Seconds from the restore request until the drill instance was available (the measured RTO).",
    ),
    "pgwarden_drill_recovery_point_age_seconds": (
        DRILL_LABELS,
        "How old the restored data was when the drill began (the measured RPO).",
    ),
    "pgwarden_drill_check_success": (
        ("schedule", "check"),
        "1 when the check passed in the schedule's last drill that ran checks, else 0.",
    ),
    "pgwarden_drill_instances": (
        ("state",),
        "Drill instances the sweeper saw: running (a drill in progress), leaked (its deletion failed) or kept"
        " (tagged as a drill but not this journal's to delete).",
    ),
}


class DrillMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.gauges = {
            name: Gauge(name, help_text, list(labels), registry=registry)
            for name, (labels, help_text) in DRILL_FAMILIES.items()
        }

    def _gauge(self, suffix: str) -> Gauge:
        return self.gauges[f"pgwarden_drill_{suffix}"]

    async def refresh(self, journal: Journal) -> None:
        """Set the `last_*` gauges from the journal's drills of the last 35 days."""
        rows = await journal.ended(ACTION, RUN_OUTCOMES, time.time() - LOOKBACK)
        last_run: dict[tuple[str, str, str], float] = {}
        last_success: dict[tuple[str, str, str], float] = {}
        measured: dict[tuple[str, str, str], dict[str, Any]] = {}
        checks: dict[tuple[str, str], float] = {}
        for row in rows:
            plan = row.plan or {}
            if "dbidentifier" not in plan or row.finished_at is None:
                continue  # stopped before it chose a source: nothing to say about the backup
            key = (str(row.playbook), str(plan["dbidentifier"]), str(plan["source"]))
            last_run[key] = row.finished_at
            if row.outcome is Outcome.SUCCEEDED:
                last_success[key] = row.finished_at
            result = row.result or {}
            if result.get("restore_seconds") is not None:
                measured[key] = result
            if result.get("checks"):
                for check in result["checks"]:
                    checks[(key[0], str(check["name"]))] = 1.0 if check["passed"] else 0.0
        for gauge in self.gauges.values():
            if gauge is not self._gauge("instances"):
                gauge.clear()
        for key, finished in last_run.items():
            self._gauge("last_run_timestamp_seconds").labels(*key).set(finished)
            self._gauge("last_success_timestamp_seconds").labels(*key).set(last_success.get(key, 0.0))
        for key, result in measured.items():
            self._gauge("restore_seconds").labels(*key).set(result["restore_seconds"])
            self._gauge("recovery_point_age_seconds").labels(*key).set(result["recovery_point_age_seconds"])
        for (schedule, check), passed in checks.items():
            self._gauge("check_success").labels(schedule, check).set(passed)

    def instances(self, running: int, leaked: int, kept: int = 0) -> None:
        """running: drills in progress; leaked: a deletion failed; kept: drill-tagged, not ours to delete."""
        self._gauge("instances").labels("running").set(running)
        self._gauge("instances").labels("leaked").set(leaked)
        self._gauge("instances").labels("kept").set(kept)
