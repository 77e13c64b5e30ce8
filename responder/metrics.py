"""The responder's own metrics, in a registry per app (SPEC names)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from responder.core import ActionSpec
from responder.notify.metrics import NotifyMetrics
from responder.outcomes import COUNTED_OUTCOMES, Outcome


class ResponderMetrics:
    """The responder's metrics; each action's own counters (`ActionSpec.counters`) are registered too."""

    def __init__(
        self, registry: CollectorRegistry | None = None, actions: Iterable[ActionSpec[Any]] = ()
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "pgwarden_responder_webhooks",
            "Webhook requests answered, by HTTP status code.",
            ["code"],
            registry=r,
        )
        self.alerts = Counter(
            "pgwarden_responder_alerts",
            "Alerts received in accepted webhooks, by alert status.",
            ["status"],
            registry=r,
        )
        self.actions = Counter(
            "pgwarden_responder_actions",
            f"Playbook decisions by outcome ({', '.join(COUNTED_OUTCOMES)}).",
            ["playbook", "action", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "pgwarden_responder_action_duration_seconds",
            "Time an action ran, from start to outcome.",
            ["action"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.notify = NotifyMetrics(r)
        self.counters = {
            name: Counter(f"pgwarden_responder_{name}", help_text, registry=r)
            for spec in actions
            for name, help_text in spec.counters.items()
        }

        def gauge(name: str, help_text: str) -> Gauge:
            return Gauge(name, help_text, registry=r)

        self.running = gauge("pgwarden_responder_actions_running", "Actions running in this process now.")
        self.pending = gauge(
            "pgwarden_responder_actions_pending",
            "Actions waiting in the journal for an approval (all replicas), read when /metrics is scraped.",
        )
        self.journal_up = gauge(
            "pgwarden_responder_journal_up", "1 when the last journal operation succeeded."
        )
        self.journal_rows = gauge(
            "pgwarden_responder_journal_rows",
            "Decisions in the journal (all replicas), read when /metrics is scraped and after each prune.",
        )

    def outcome(self, playbook: str | None, action: str | None, outcome: Outcome) -> None:
        if outcome.counted:
            self.actions.labels(playbook or "", action or "", outcome.value).inc()
