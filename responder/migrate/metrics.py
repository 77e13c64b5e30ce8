"""`pgwarden_migrations_total{target,outcome}` and `pgwarden_backfills_total{target,outcome}`: `migrate run` and
`migrate backfill` are one-shot processes, so the counters are the responder's, read from the journal they share
(every run is a row), refreshed with the drill gauges. Rows the journal's retention prunes leave the count:
Prometheus's rate() sees that as a counter reset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from responder.journal import Journal
from responder.migrate.backfill import ACTION as BACKFILL
from responder.migrate.preflight import ACTION
from responder.outcomes import Outcome

# (journal action, family, help) of each operator command counted
FAMILIES = (
    (
        ACTION,
        "pgwarden_migrations",
        "Guarded migration runs (`migrate run`) journaled, by target and outcome (guardrail: refused).",
    ),
    (
        BACKFILL,
        "pgwarden_backfills",
        "Batched backfills (`migrate backfill`) journaled, by target and outcome (guardrail: refused).",
    ),
)


class MigrationMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: dict[str, Counter[tuple[str, str]]] = {action: Counter() for action, _, _ in FAMILIES}
        registry.register(self)

    async def refresh(self, journal: Journal) -> None:
        for action, _, _ in FAMILIES:
            rows = await journal.ended(action, list(Outcome), 0.0)
            self.counts[action] = Counter(
                (r.labels.get("target", ""), str(r.outcome)) for r in rows if r.outcome is not None
            )

    def collect(self) -> Iterator[CounterMetricFamily]:
        for action, name, help_text in FAMILIES:
            family = CounterMetricFamily(name, help_text, labels=["target", "outcome"])
            for (target, outcome), count in sorted(self.counts[action].items()):
                family.add_metric([target, outcome], count)
            yield family
