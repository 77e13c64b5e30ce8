"""The alert rules, their promtool unit tests and the Alertmanager routing (alerts/, alerts/README.md).

promtool and amtool check what they own (syntax, lint, the unit tests, the routing tree); the rest is checked
here: SPEC's alert list, annotations and their runbook anchors, unit-test coverage of every rule, metric and
label names against the exporter's own declarations, and the remediable alerts against the responder's own
playbook matching (examples/responder.yml, through responder.config).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.aws.render import AWS_FAMILIES
from exporter.collectors import COLLECTORS
from exporter.framework import FRAMEWORK_FAMILIES
from responder.config import Config, build_config
from responder.core import TargetKind
from responder.drills.metrics import DRILL_FAMILIES
from responder.playbooks import default_registry
from tests.support.services import installed

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.rules.yml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*.test.yml"))
ALERTMANAGER = ALERTS / "alertmanager.yml"
DOCS = ALERTS / "README.md"
RESPONDER_EXAMPLE = ROOT / "examples" / "responder.yml"
# Every runbook_url: the section of alerts/README.md, at the address the Prometheus external label
# `pgwarden_runbook_base` gives, else the relative path (alerts/tests/runbook_url.test.yml renders both).
RUNBOOK_URL = '{{ or $externalLabels.pgwarden_runbook_base "alerts/README.md" }}#'
RESPONDER_RECEIVER = "pgwarden-responder"
DEFAULT_RECEIVER = "default"
TIMEOUT = 60  # seconds, per promtool/amtool run; each takes well under 2 s

# SPEC.md, section "Alerts": the alerts every deployment can rely on.
SPEC_ALERTS = (
    "PostgresDown",
    "PostgresLongRunningQuery",
    "PostgresIdleInTransaction",
    "PostgresOverloaded",
    "PostgresConnectionsHigh",
    "PostgresSlowQueries",
    "PostgresDeadlocks",
    "PostgresCacheHitRatioLow",
    "PostgresTableBloatHigh",
    "PostgresDeadTuplesHigh",
    "PostgresUnusedIndex",
    "PostgresSeqScanHeavy",
    "PostgresXIDWraparound",
    "PostgresReplicationLagHigh",
    "PostgresExporterErrors",
    "RDSCPUHigh",
    "RDSFreeStorageLow",
    "RDSReplicaLagHigh",
    "RDSBackupStale",
    "RDSPointInTimeRecoveryLag",
    "RDSCrossRegionBackupStale",
)
# The issue: "route remediable alerts (long-running queries, overload, CPU, free storage, bloat) to the responder".
REMEDIABLE_AT_LEAST = {
    "PostgresLongRunningQuery",
    "PostgresOverloaded",
    "RDSCPUHigh",
    "RDSFreeStorageLow",
    "PostgresTableBloatHigh",
}
SEVERITIES = {"critical", "warning", "info"}
# Labels every series may carry besides its family's own: Prometheus' job/instance, the exporter's `target`,
# and what /discovery attaches to a target that names an RDS instance.
COMMON_LABELS = {"__name__", "job", "instance", "target", "dbidentifier", "aws_region", "aws_account_id"}
# What each kind of playbook reads from the alert's labels (responder/decide.py: resolve_target).
KIND_LABELS = {
    TargetKind.RDS: {"dbidentifier", "aws_region"},
    TargetKind.POSTGRES: {"target"},
    TargetKind.TABLE: {"target", "datname", "schemaname", "relname"},
}


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    body: dict[str, Any]

    @property
    def alert(self) -> str:
        return str(self.body.get("alert", ""))

    @property
    def expr(self) -> str:
        return str(self.body["expr"])

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.body.get("labels") or {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.body.get("annotations") or {}).items()}

    def __str__(self) -> str:
        name = self.alert or self.body.get("record")
        return f"{self.file}:{self.group}:{name}{self.labels}"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def all_rules() -> tuple[Rule, ...]:
    return tuple(
        Rule(path.name, group["name"], rule)
        for path in RULE_FILES
        for group in _load(path)["groups"]
        for rule in group["rules"]
    )


def alert_rules() -> list[Rule]:
    return [r for r in all_rules() if r.alert]


def alert_names() -> set[str]:
    return {r.alert for r in alert_rules()}


def unit_tests() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every alert_rule_test of every test file, with the file's name."""
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            for case in group.get("alert_rule_test") or []:
                yield path.name, case


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)


# --- promtool and amtool ---------------------------------------------------------------------------------


def test_the_files_exist() -> None:
    assert {"postgres.rules.yml", "rds.rules.yml"} <= {p.name for p in RULE_FILES}
    assert len(TEST_FILES) >= 2
    assert ALERTMANAGER.is_file() and DOCS.is_file()


def test_promtool_check_rules_is_clean() -> None:
    promtool = installed("promtool", "prometheus")
    result = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("SUCCESS") == len(RULE_FILES), output
    for word in ("FAILED", "WARNING", "lint", "duplicate"):
        assert word not in output, output


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    promtool = installed("promtool", "prometheus")
    result = _run([promtool, "test", "rules", str(path)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and "FAILED" not in output, output


def test_amtool_check_config_is_clean() -> None:
    amtool = installed("amtool", "prometheus-alertmanager")
    result = _run([amtool, "check-config", str(ALERTMANAGER)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and "FAILED" not in output, output


# --- the alerts SPEC requires, their labels and annotations ----------------------------------------------


def test_every_alert_spec_lists_exists() -> None:
    assert not set(SPEC_ALERTS) - alert_names()


@cache
def docs_anchors() -> frozenset[str]:
    """GitHub's anchors for the headings of alerts/README.md."""
    anchors = set()
    for line in DOCS.read_text().splitlines():
        if m := re.match(r"#{1,6}\s+(.+?)\s*$", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            anchors.add(slug)
    return frozenset(anchors)


@pytest.mark.parametrize("rule", alert_rules(), ids=str)
def test_every_alert_has_severity_annotations_and_a_documented_runbook(rule: Rule) -> None:
    assert rule.labels.get("severity") in SEVERITIES
    annotations = rule.annotations
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{rule}: no {key}"
    anchor = rule.alert.lower()
    assert annotations["runbook_url"] == RUNBOOK_URL + anchor
    assert anchor in docs_anchors(), f"alerts/README.md has no section #{anchor}"
    assert "for" in rule.body, f"{rule}: no `for:`, a single evaluation would fire it"


def test_unit_tests_expect_the_runbook_url_for_their_external_labels() -> None:
    """Each expected runbook_url is the label's base, or the relative default, then the alert's section."""
    with_label = without_label = 0
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            base = (group.get("external_labels") or {}).get("pgwarden_runbook_base")
            for case in group.get("alert_rule_test") or []:
                for expected in case.get("exp_alerts") or []:
                    url = (expected.get("exp_annotations") or {}).get("runbook_url")
                    wanted = f"{base or 'alerts/README.md'}#{case['alertname'].lower()}"
                    assert url == wanted, f"{path.name}: {case['alertname']}"
                    with_label += base is not None
                    without_label += base is None
    assert with_label and without_label


def test_every_alert_is_in_the_docs_table() -> None:
    text = DOCS.read_text()
    for name in alert_names():
        assert f"| [{name}](#{name.lower()}) |" in text, name


def test_aggregations_keep_the_labels_the_responder_reads() -> None:
    """`by (...)` drops every label it does not name (target, dbidentifier ...); `without (...)` keeps them."""
    for rule in all_rules():
        assert not re.search(r"\bby\s*\(", rule.expr), f"{rule}: aggregate with without (...)"


# --- metric and label names --------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# a grouping or matching clause with its label list; group_left/group_right may also stand without one
_CLAUSE = re.compile(
    r"\b(?:(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|group_(?:left|right)\b)"
)
_RANGE = re.compile(r"\[[^\]]*\]")
_TOKEN = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of every vector selector in a PromQL expression."""
    text = _RANGE.sub(" ", _CLAUSE.sub(" ", _STRING.sub('""', expr)))
    found = []
    for name, braces, call in _TOKEN.findall(text):
        if call or name.lower() in KEYWORDS:
            continue  # a function or an aggregation, or an operator
        found.append((name, set(_MATCHER.findall(braces))))
    return found


def test_selector_parsing() -> None:
    expr = (
        'max without (state) (m1{state=~"idle (x)"}[5m]) > 3 * 1e6 and on (a, b) m2 '
        "unless rate(m3{x!=\"}\"}[15m]) offset 1d or time() - pg:rec:sum{threshold='120'}"
    )
    assert selectors(expr) == [
        ("m1", {"state"}),
        ("m2", set()),
        ("m3", {"x"}),
        ("pg:rec:sum", {"threshold"}),
    ]


@cache
def exported_families() -> dict[str, set[str]]:
    """Every family the exporter declares, and the responder's drill gauges, with their labels."""
    families = [*FRAMEWORK_FAMILIES, *(f for cls in COLLECTORS for f in cls.families), *AWS_FAMILIES]
    drills = {name: set(labels) for name, (labels, _) in DRILL_FAMILIES.items()}  # the responder's
    return {f.name: set(f.labels) for f in families} | drills


@pytest.mark.parametrize("rule", all_rules(), ids=str)
def test_expressions_use_only_exported_metrics_and_labels(rule: Rule) -> None:
    families = exported_families()
    assert "pg_stat_activity_long_running_queries" in families and "rds_free_storage_bytes" in families
    recorded = {str(r.body["record"]) for r in all_rules() if "record" in r.body}
    for name, labels in selectors(rule.expr):
        if name in recorded:
            continue
        if name.startswith("pg_settings_"):
            assert "pg_settings_<name>" in families
            allowed: set[str] = set()
        else:
            assert name in families, f"{rule}: {name} is not a metric the exporter exports"
            allowed = families[name]
        assert labels <= allowed | COMMON_LABELS, f"{rule}: {name} has no label {labels - allowed}"


# --- unit-test coverage ------------------------------------------------------------------------------------


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet() -> None:
    """Fires at least once; quiet at least twice (just below the threshold, and for less than `for:`)."""
    fired: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for _, case in unit_tests():
        counts = fired if case.get("exp_alerts") else quiet
        counts[case["alertname"]] = counts.get(case["alertname"], 0) + 1
    for name in alert_names():
        assert fired.get(name, 0) >= 1, f"{name}: no unit test fires it"
        assert quiet.get(name, 0) >= 2, (
            f"{name}: needs unit tests showing it quiet (below threshold, before for)"
        )
    assert not (set(fired) | set(quiet)) - alert_names(), "unit tests of alerts that do not exist"


@pytest.mark.parametrize("rule", alert_rules(), ids=str)
def test_every_alert_rule_fires_in_a_unit_test(rule: Rule) -> None:
    """Each rule, each severity of an alert included, is expected to fire somewhere with its own labels."""
    for _, case in unit_tests():
        if case["alertname"] != rule.alert:
            continue
        for expected in case.get("exp_alerts") or []:
            labels = {str(k): str(v) for k, v in (expected.get("exp_labels") or {}).items()}
            if rule.labels.items() <= labels.items():
                return
    pytest.fail(f"{rule}: no unit test expects it to fire")


# --- the responder: playbooks, labels, routing -------------------------------------------------------------


@pytest.fixture
def responder_config(monkeypatch: pytest.MonkeyPatch) -> Config:
    """examples/responder.yml as the responder loads it (its secrets' environment variables set)."""
    raw = _load(RESPONDER_EXAMPLE)
    for key in ("token_env",):
        if raw.get(key):
            monkeypatch.setenv(raw[key], "test-token")
    for target in raw.get("targets") or []:
        if target.get("dsn_env"):
            monkeypatch.setenv(target["dsn_env"], "postgresql://responder@db.internal:5432/postgres")
    for person in [*(raw.get("approvers") or []), *(raw.get("viewers") or [])]:
        if person.get("token_env"):
            monkeypatch.setenv(person["token_env"], f"token-of-{person['name']}")
    return build_config(raw, default_registry())


def remediable(config: Config, labels: dict[str, str]) -> list[str]:
    """Names of the playbooks that act on an alert with these labels (the responder's own matching)."""
    return [p.name for p in config.playbooks if p.match.matches(labels)]


def test_every_playbook_alert_exists(responder_config: Config) -> None:
    for playbook in responder_config.playbooks:
        for name in playbook.match.alertnames:
            assert name in alert_names(), f"examples/responder.yml: playbook {playbook.name} matches {name}"


def test_the_remediable_alerts_include_the_issues(responder_config: Config) -> None:
    acted_on = {
        r.alert for r in alert_rules() if remediable(responder_config, {"alertname": r.alert, **r.labels})
    }
    assert not REMEDIABLE_AT_LEAST - acted_on


def test_remediable_alerts_carry_the_labels_their_playbook_reads(responder_config: Config) -> None:
    """Checked on the alerts the unit tests expect, so the expressions are shown to keep the labels."""
    checked = set()
    for _, case in unit_tests():
        for expected in case.get("exp_alerts") or []:
            labels = {str(k): str(v) for k, v in (expected.get("exp_labels") or {}).items()}
            labels["alertname"] = case["alertname"]
            for playbook in responder_config.playbooks:
                if playbook.match.matches(labels):
                    needed = KIND_LABELS[playbook.spec.target_kind]
                    assert needed <= labels.keys(), f"{case['alertname']} lacks {needed - labels.keys()}"
                    checked.add(case["alertname"])
    assert checked == {n for p in responder_config.playbooks for n in p.match.alertnames}


def routes(labels: dict[str, str]) -> list[str]:
    amtool = installed("amtool", "prometheus-alertmanager")
    args = [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}"]
    result = _run([*args, *(f"{k}={v}" for k, v in sorted(labels.items()))])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


def test_alertmanager_routes_exactly_the_remediable_alerts_to_the_responder(responder_config: Config) -> None:
    seen = set()
    for rule in alert_rules():
        labels = {"alertname": rule.alert, **rule.labels}
        key = tuple(sorted(labels.items()))
        if key in seen:
            continue
        seen.add(key)
        receivers = routes(labels)
        acts = bool(remediable(responder_config, labels))
        assert (RESPONDER_RECEIVER in receivers) == acts, f"{labels}: routed to {receivers}"
        assert DEFAULT_RECEIVER in receivers, f"{labels}: the humans never see it"
    assert routes({"alertname": "SomethingElse", "severity": "critical"}) == [DEFAULT_RECEIVER]


def test_alertmanager_responder_receiver_and_routes() -> None:
    config = _load(ALERTMANAGER)
    (receiver,) = [r for r in config["receivers"] if r["name"] == RESPONDER_RECEIVER]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].endswith("/webhook")
    assert webhook["send_resolved"] is True
    assert webhook.get("max_alerts", 0) == 0  # a truncated alert would be dropped
    auth = webhook["http_config"]["authorization"]
    assert auth.get("type", "Bearer") == "Bearer" and auth["credentials_file"] and "credentials" not in auth
    responder_routes = [r for r in config["route"]["routes"] if r["receiver"] == RESPONDER_RECEIVER]
    assert responder_routes
    for route in responder_routes:
        assert route["group_by"] == ["..."], "one alert per notification"
        assert route["continue"] is True, "the humans see remediable alerts too"
        assert 0 < _seconds(route["group_wait"]) <= 30
        # A re-fire between two flushes waits for the next repeat (alerts/README.md, "Routing"): both short.
        assert 0 < _seconds(route["group_interval"]) <= _seconds(route["repeat_interval"])
        assert _seconds(route["group_interval"]) + _seconds(route["repeat_interval"]) <= 120


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|[smhdw])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)
