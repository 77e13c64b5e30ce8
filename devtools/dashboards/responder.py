"""The responder dashboard: webhooks, decisions, actions and the journal."""

from __future__ import annotations

from devtools.dashboards.panels import INSTANCE, PLAYBOOK, RI, RIP, Dashboard, Panel, Row, W, graph, q, top

RESPONDER = Dashboard(
    "pgwarden-responder",
    "pgwarden / Responder",
    "Alertmanager webhooks, playbook decisions by outcome, backends terminated and approvals.",
    (INSTANCE, PLAYBOOK),
    (
        Row("Webhooks"),
        graph(
            "Webhooks by HTTP status",
            f"sum by (code) (increase(pgwarden_responder_webhooks_total{{{RI}}}{W}))",
            "{{code}}",
            stack=True,
        ),
        graph(
            "Alerts received by status",
            f"sum by (status) (increase(pgwarden_responder_alerts_total{{{RI}}}{W}))",
            "{{status}}",
            stack=True,
        ),
        Row("Actions"),
        graph(
            "Actions by outcome",
            f"sum by (playbook, outcome) (increase(pgwarden_responder_actions_total{{{RIP}}}{W}))",
            "{{playbook}} {{outcome}}",
            stack=True,
        ),
        Panel(
            "Decisions since start, by outcome",
            [top(f"sum by (playbook, action, outcome) (pgwarden_responder_actions_total{{{RIP}}})")],
            kind="table",
        ),
        Panel(
            "Backends terminated and queries cancelled",
            [
                q(f"sum(increase(pgwarden_responder_backends_terminated_total{{{RI}}}{W}))", "terminated"),
                q(f"sum(increase(pgwarden_responder_backends_cancelled_total{{{RI}}}{W}))", "cancelled"),
            ],
        ),
        graph(
            "Pending approvals now",
            f"max(pgwarden_responder_actions_pending{{{RI}}})",
            "waiting for a human",
            description="Actions waiting in the journal for POST /actions/{id}/approve or /reject (all replicas "
            "share the journal, hence max). GET /actions lists them.",
        ),
        graph(
            "Approvals: requested, rejected, expired",
            f"sum by (playbook, outcome) "
            f'(pgwarden_responder_actions_total{{{RIP}, outcome=~"pending|rejected|expired"}})',
            "{{playbook}} {{outcome}}",
            description="Counts since the responder started: `pending` counts approval requests.",
        ),
        graph(
            "Action duration (p95)",
            "histogram_quantile(0.95, sum by (le, action) "
            f"(rate(pgwarden_responder_action_duration_seconds_bucket{{{RI}}}{W})))",
            "{{action}}",
            unit="s",
        ),
        Panel(
            "Running actions and journal",
            [
                q(f"sum(pgwarden_responder_actions_running{{{RI}}})", "running"),
                q(f"min(pgwarden_responder_journal_up{{{RI}}})", "journal up"),
            ],
        ),
    ),
)
