"""Notification metrics: what happened to each notice, and how many wait, by receiver (its name, never its URL)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

SENT, FAILED, GAVE_UP, DIGESTED = "sent", "failed", "gave_up", "digested"


class NotifyMetrics:
    """`pgwarden_notifications_total{receiver,outcome}` and `pgwarden_notifications_queued{receiver}`."""

    def __init__(self, registry: CollectorRegistry, receivers: tuple[str, ...] = ()) -> None:
        self.total = Counter(
            "pgwarden_notifications",
            "Notices by receiver and outcome: sent, failed (an attempt, retried), gave_up, digested (said in a"
            " rate limit's digest instead of a message of their own).",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.queued = Gauge(
            "pgwarden_notifications_queued",
            "Notices in the journal's outbox not sent yet (all replicas), by receiver.",
            ["receiver"],
            registry=registry,
        )
        for name in receivers:
            self.queued.labels(name).set(0)

    def count(self, receiver: str, outcome: str, n: int = 1) -> None:
        if n:
            self.total.labels(receiver, outcome).inc(n)

    def set_queued(self, receivers: tuple[str, ...], queued: dict[str, int]) -> None:
        for name in {*receivers, *queued}:
            self.queued.labels(name).set(queued.get(name, 0))
