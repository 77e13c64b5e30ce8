"""The timeline's words: one line per playbook and outcome, from rows shaped as the journal writes them (the
plans and results below are the shapes each playbook journals), read as mappings or as objects; ages with
the exact time; plans and results as definitions; and the links to Alertmanager and to a Grafana panel that
exists in pgwarden's dashboards."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from responder.ui.links import PANELS, alertmanager_link, links
from responder.ui.timeline import ago, definitions, entry, headline

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 24, 3, 10, tzinfo=UTC)
SLEEPER = {"pid": 23630, "usename": "app", "datname": "shop", "state": "active", "running_seconds": 7.2,
           "query": "SELECT pg_sleep(600)", "backend_start": "2026-11-24T03:00:00Z"}  # fmt: skip
RDS_TARGET = "rds us-east-1/prod"


def row(action: str | None, outcome: str | None, state: str = "done", **fields: Any) -> dict[str, Any]:
    alertname = fields.pop("alertname", "TestAlert")
    labels = {"alertname": alertname, **fields.pop("labels", {})}
    return {
        "id": fields.pop("id", 42), "playbook": fields.pop("playbook", "pb"), "action": action,
        "mode": "enforce", "state": state, "outcome": outcome,
        "alert": {"alertname": alertname, "status": "firing", "fingerprint": "f1",
                  "startsAt": "2026-11-24T03:00:00Z", "labels": labels},
        "target": fields.pop("target", "production (db:5432/postgres) database shop"),
        "plan": fields.pop("plan", None), "result": fields.pop("result", None), "error": fields.pop("error", None),
        "duplicate_of": fields.pop("duplicate_of", None), "decided_by": fields.pop("decided_by", None),
        "timings": {"journaled_at": "2026-11-24T03:07:00Z", "started_at": None, "finished_at": None},
        **fields,
    }  # fmt: skip


TERMINATE_PLAN = {"server": "db:5432/postgres", "database": "shop", "min_duration_seconds": 5.0,
                  "states": ["active"], "steps": ["cancel", "wait 1s", "terminate"], "backends": [SLEEPER]}  # fmt: skip
BACKFILL_PLAN = {"target": "prod", "schema": "public", "table": "orders", "column": "amount_cents",
                 "expression": "amount * 100", "where": "amount_cents IS NULL", "batch_size": 5000,
                 "progress_key": "9f0c", "total": 1000000}  # fmt: skip
DRILL = {"dbidentifier": "prod", "source": "latest_snapshot", "restore_seconds": 412.5, "deleted": True,
         "checks": [{"name": "users present", "value": 18211, "expect": {"min": 1.0}, "passed": True},
                    {"name": "fresh", "value": 99999, "expect": {"max": 93600.0}, "passed": False}]}  # fmt: skip

CASES = [
    (row("terminate_queries", "succeeded", plan=TERMINATE_PLAN, result={"cancelled": [23630], "terminated": []}),
     "cancelled pid 23630 `SELECT pg_sleep(600)` after 7 s in shop"),
    (row("terminate_queries", "succeeded", plan={**TERMINATE_PLAN, "backends": [SLEEPER, {**SLEEPER, "pid": 2}]},
         result={"cancelled": [23630], "terminated": [2]}),
     "cancelled pid 23630 `SELECT pg_sleep(600)` after 7 s, then terminated pid 2 `SELECT pg_sleep(600)` after 7 s in shop"),
    (row("terminate_queries", "succeeded", plan={**TERMINATE_PLAN, "backends": []},
         result={"cancelled": [], "terminated": []}),
     "nothing to stop: no query over 5 s in shop"),
    (row("terminate_queries", "dry_run", plan=TERMINATE_PLAN, result={"would_signal": 1}),
     "would cancel pid 23630 `SELECT pg_sleep(600)` after 7 s in shop"),
    (row("scale_instance", "succeeded", target=RDS_TARGET,
         plan={"instance": "prod", "region": "us-east-1", "from": "db.t3.medium", "to": "db.r6g.large"},
         result={"before": {"class": "db.t3.medium"}, "after": {"class": "db.r6g.large", "pending": {}}}),
     "scaled prod db.t3.medium → db.r6g.large"),
    (row("scale_instance", "dry_run", plan={"instance": "prod", "from": "db.t3.medium", "to": "db.r6g.large"},
         result={"would_scale": {}}),
     "would scale prod db.t3.medium → db.r6g.large"),
    (row("scale_instance", None, state="pending", target=RDS_TARGET),
     f"waiting for an approval: scale_instance on {RDS_TARGET}"),
    (row("grow_storage", "succeeded", plan={"instance": "prod", "field": "AllocatedStorage", "from": 100, "to": 125},
         result={"before": {"allocated_gib": 100}, "after": {"allocated_gib": 125}}),
     "grew storage of prod 100 → 125 GiB"),
    (row("grow_storage", "succeeded",
         plan={"instance": "prod", "field": "MaxAllocatedStorage", "from": 105, "to": 132}, result={}),
     "raised the storage ceiling of prod 105 → 132 GiB"),
    (row("grow_storage", "guardrail", error="last storage change was 2.0h ago; RDS allows one per 6h"),
     "refused: last storage change was 2.0h ago; RDS allows one per 6h"),
    (row("vacuum_analyze", "succeeded", plan={"database": "shop", "statement": 'VACUUM (ANALYZE) "public"."orders"'},
         result={"ran": 'VACUUM (ANALYZE) "public"."orders"'}),
     'ran `VACUUM (ANALYZE) "public"."orders"` in shop'),
    (row("vacuum_analyze", "succeeded", plan={"database": "shop", "selection": "stale_analyze", "tables": [{}, {}]},
         result={"ran": ["a", "b"], "skipped_locked": ["c"]}),
     "vacuumed 2 tables with stale statistics in shop (1 locked, skipped)"),
    (row("restore_drill", "succeeded", result={**DRILL, "checks": DRILL["checks"][:1]}),
     "restored prod from latest_snapshot in 412 s (7 min), 1/1 checks passed, instance deleted"),
    (row("restore_drill", "failed", result=DRILL, error="check 'fresh' failed: value 99999"),
     "failed: check 'fresh' failed: value 99999 (restored prod from latest_snapshot in 412 s (7 min), 1/2 checks"
     " passed, instance deleted)"),
    (row("maintenance_report", "succeeded",
         result={"period": "weekly", "verdicts": {"a": "ok", "b": "attention", "c": "no data"}}),
     "built the weekly report: 1 attention, 1 no data"),
    (row("index_advice", "succeeded", plan={"databases": ["shop"], "top": 50, "min_saving": 0.5},
         result={"databases": [{"database": "shop", "planned": 12, "recommendations": [{}, {}]}]}),
     "advised on indexes in shop: 2 recommended, 12 statement(s) planned"),
    (row("index_advice", "dry_run", plan={"databases": "all", "top": 50, "min_saving": 0.5},
         result={"would_advise": {}}),
     "would advise on indexes in every database"),
    (row("recover", "succeeded", plan={"instance": "prod", "to": "2026-11-24T02:00:00Z",
                                        "steps": {"window": {"done": True}, "restore": {"done": True}}}),
     "recovery of prod to 2026-11-24T02:00:00Z: window, restore"),
    (row("backfill", "succeeded", plan=BACKFILL_PLAN, result={"rows": 1000000, "batches": 200, "total": 1000000}),
     "backfilled public.orders: set `amount_cents = amount * 100` where `amount_cents IS NULL`"
     " on 1,000,000 row(s) in 200 batch(es)"),
    (row("backfill", "dry_run", plan={**BACKFILL_PLAN, "where": None}, result={"rows": 12, "batches": 1, "total": 12}),
     "would backfill public.orders: set `amount_cents = amount * 100` on 12 row(s) in 1 batch(es)"),
    (row("backfill", "failed", plan=BACKFILL_PLAN, error="QueryCanceled: canceling statement due to lock timeout"),
     "failed: QueryCanceled: canceling statement due to lock timeout"),
    (row("record", "succeeded", result={"recorded": True}), "record: succeeded"),
    (row("terminate_queries", "failed", plan=TERMINATE_PLAN, error="OperationalError: connection refused"),
     "failed: OperationalError: connection refused"),
    (row("terminate_queries", "cooldown", error="cooldown: acted 30s ago"), "held back: cooldown: acted 30s ago"),
    (row("terminate_queries", "duplicate", duplicate_of=41), "duplicate of #41: already decided"),
    (row("terminate_queries", "no_target", error="no configured target matches the alert's labels"),
     "no target: no configured target matches the alert's labels"),
    (row("scale_instance", "rejected", decided_by="alice"), "rejected by alice"),
    (row(None, "rejected", error="alert has no alertname label"), "alert rejected: alert has no alertname label"),
    (row("scale_instance", "expired", error="approval window expired"), "not approved in time: approval window expired"),
    (row("terminate_queries", "interrupted", error="the process stopped"), "interrupted: the process stopped"),
    (row(None, "resolved", alertname="PostgresLongRunningQuery"), "alert PostgresLongRunningQuery resolved"),
    (row(None, "unmatched", alertname="Other"), "alert Other: no playbook matches"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("decision", "words"), CASES, ids=[f"{r['action']}-{r['outcome']}" for r, _ in CASES]
)
def test_one_line_per_decision(decision: dict[str, Any], words: str) -> None:
    assert headline(decision) == words


@dataclass(frozen=True)
class Alert:
    alertname: str
    labels: dict[str, str]
    startsAt: str


@dataclass(frozen=True)
class Timings:
    journaled_at: str


@dataclass(frozen=True)
class Row:
    """A typed, frozen row with the journal's field names, as the journal will return them."""

    id: int
    action: str
    outcome: str
    state: str
    target: str
    alert: Alert
    timings: Timings
    plan: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    playbook: str = "kill-long-queries"
    error: str | None = None
    decided_by: str | None = None
    duplicate_of: int | None = None


def test_rows_as_objects_read_as_mappings_do() -> None:
    alert = Alert("PostgresLongRunningQuery", {"alertname": "PostgresLongRunningQuery", "target": "production"},
                  "2026-11-24T03:00:00Z")  # fmt: skip
    typed = Row(7, "terminate_queries", "succeeded", "done", "production", alert, Timings("2026-11-24T03:09:30Z"),
                TERMINATE_PLAN, {"cancelled": [23630], "terminated": []})  # fmt: skip
    shown = entry(typed, NOW, alertmanager="http://am:9093", grafana="http://grafana:3000")
    assert shown.headline == "cancelled pid 23630 `SELECT pg_sleep(600)` after 7 s in shop"
    assert (shown.id, shown.alertname, shown.labels) == (
        7,
        "PostgresLongRunningQuery",
        [("target", "production")],
    )
    assert (shown.journaled_ago, shown.journaled_at) == ("30 s ago", "2026-11-24 03:09:30 UTC")
    assert [link.label for link in shown.links] == [
        "Alertmanager", "Grafana: Long-running queries (active, by threshold)"
    ]  # fmt: skip


def test_ages_and_exact_times() -> None:
    at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert [ago(at, NOW.replace(minute=m, second=s)) for m, s in ((0, 2), (0, 40), (7, 0), (10, 0))] == [
        "just now", "40 s ago", "7 min ago", "10 min ago"
    ]  # fmt: skip
    assert ago(at, datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == "30 h ago"
    assert ago(at, datetime(2026, 11, 29, 3, 0, tzinfo=UTC)) == "5 d ago"
    assert ago(None, NOW) == "-"


def test_plan_and_result_as_definitions() -> None:
    plan = dict(definitions(TERMINATE_PLAN))
    assert plan["min duration seconds"] == ["5.0"] and plan["steps"] == ["cancel, wait 1s, terminate"]
    assert plan["backends"] == ["pid 23630 (app in shop, 7 s): SELECT pg_sleep(600)"]
    drill = dict(definitions(DRILL))
    assert drill["checks"] == [
        "✔ users present: 18211 (expect min 1.0)",
        "✘ fresh: 99999 (expect max 93600.0)",
    ]
    assert drill["deleted"] == ["yes"]
    effect = {"kind": "aws", "operation": "ModifyDBInstance", "region": "us-east-1", "state": "done",
              "params": {"DBInstanceClass": "db.r6g.large"}, "at": 1.0}  # fmt: skip
    assert dict(definitions({"effects": [effect]}))["effects"] == [
        "done: ModifyDBInstance (us-east-1) DBInstanceClass db.r6g.large"
    ]
    steps = [{"at": "2026-11-24T03:00:02Z", "step": "restore requested", "instance": "prod-drill"}]
    assert dict(definitions({"steps": steps}))["steps"] == [
        "restore requested at 03:00:02: instance prod-drill"
    ]
    long = dict(definitions({"query": "SELECT " + "x, " * 200}))["query"][0]
    assert len(long) == 200 and long.endswith("…")
    assert definitions(None) == []


def test_alertmanager_links_filter_on_the_alerts_labels() -> None:
    labels = {"alertname": "RDSCPUHigh", "dbidentifier": 'we"ird'}
    url = alertmanager_link("http://am:9093/", labels).url
    assert url.startswith("http://am:9093/#/alerts?filter=")
    assert unquote(url.split("filter=", 1)[1]) == '{alertname="RDSCPUHigh",dbidentifier="we\\"ird"}'


def test_grafana_links_open_the_panel_with_the_alerts_variables_around_its_start() -> None:
    labels = {"alertname": "RDSCPUHigh", "target": "production", "dbidentifier": "prod"}
    (_, grafana) = links("RDSCPUHigh", labels, "2026-11-24T03:00:00Z", "http://am", "http://grafana:3000")
    parts = urlsplit(grafana.url)
    assert parts.path == "/d/pgwarden-rds"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    start = int(datetime(2026, 11, 24, 3, 0, tzinfo=UTC).timestamp() * 1000)
    assert query == {"viewPanel": "4", "var-target": "production", "var-dbidentifier": "prod",
                     "from": str(start - 3_600_000), "to": str(start + 3_600_000)}  # fmt: skip
    assert links("NoPanel", {"alertname": "NoPanel"}, None, None, "http://grafana") == []
    assert links("schedule-job", {"target": "production"}, None, "http://am", "http://grafana") == []


def test_every_grafana_panel_linked_is_in_the_dashboards() -> None:
    """The ids are the generated dashboards' (python -m devtools.dashboards): a regenerated dashboard that moves
    a panel fails here, not in front of someone following the link at 3 a.m."""
    dashboards = {}
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        dashboards[board["uid"]] = board
    rules = "".join(p.read_text() for p in (ROOT / "alerts").glob("*.rules.yml"))
    for alertname, panel in PANELS.items():
        assert f"alert: {alertname}\n" in rules, alertname
        board = dashboards[panel.dashboard]
        (found,) = [p for p in board["panels"] if p.get("id") == panel.panel]
        assert found["title"] == panel.title, alertname
        variables = {v["name"] for v in board["templating"]["list"]}
        assert set(panel.variables) <= variables, alertname
