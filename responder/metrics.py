"""The responder's own metrics, in a registry per app (SPEC names)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Every outcome an action can end with; the first seven are the SPEC's, the rest are ours.
OUTCOMES = (
    "succeeded",
    "failed",
    "dry_run",
    "duplicate",
    "cooldown",
    "guardrail",
    "no_target",
    "pending",
    "rejected",
    "expired",
    "interrupted",
)


class ResponderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
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
            "Playbook decisions by outcome (succeeded, failed, dry_run, duplicate, cooldown, guardrail, "
            "no_target, pending, rejected, expired, interrupted).",
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
        self.backends_terminated = Counter(
            "pgwarden_responder_backends_terminated",
            "PostgreSQL backends terminated by terminate_queries (cancels not counted).",
            registry=r,
        )
        self.backends_cancelled = Counter(
            "pgwarden_responder_backends_cancelled",
            "PostgreSQL queries cancelled by terminate_queries.",
            registry=r,
        )
        self.running = Gauge(
            "pgwarden_responder_actions_running", "Actions running in this process now.", registry=r
        )
        self.pending = Gauge(
            "pgwarden_responder_actions_pending",
            "Actions waiting in the journal for an approval (all replicas), read when /metrics is scraped.",
            registry=r,
        )
        self.journal_up = Gauge(
            "pgwarden_responder_journal_up", "1 when the last journal operation succeeded.", registry=r
        )

    def outcome(self, playbook: str | None, action: str | None, outcome: str) -> None:
        self.actions.labels(playbook or "", action or "", outcome).inc()
