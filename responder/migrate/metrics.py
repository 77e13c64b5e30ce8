"""`pgwarden_migrations_total{target,outcome}`: `migrate run` is a one-shot process, so the counter is the
responder's, read from the journal they share (every run is a row), refreshed with the drill gauges. Rows the
journal's retention prunes leave the count: Prometheus's rate() sees that as a counter reset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from responder.journal import Journal
from responder.migrate.preflight import ACTION
from responder.outcomes import Outcome

NAME = "pgwarden_migrations"
HELP = "Guarded migration runs (`migrate run`) journaled, by target and outcome (guardrail: refused)."


class MigrationMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        registry.register(self)

    async def refresh(self, journal: Journal) -> None:
        rows = await journal.ended(ACTION, list(Outcome), 0.0)
        self.counts = Counter(
            (r.labels.get("target", ""), str(r.outcome)) for r in rows if r.outcome is not None
        )

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(NAME, HELP, labels=["target", "outcome"])
        for (target, outcome), count in sorted(self.counts.items()):
            family.add_metric([target, outcome], count)
        yield family
