"""qonto's prometheus-rds-alerts chart (qonto_rds_alerts/, see its SOURCE.md), rendered with its default values,
against what pgwarden exports: the rules load into Prometheus (promtool check rules), every vector selector of
every rule matches a series pgwarden exported, and every alert's expression, evaluated by promtool on those
series, picks exactly the instances the world below makes it pick.

The world: EC2 instance types and CloudWatch datapoints on the moto server; DescribeDBInstances (moto cannot
leave a change pending), DescribePendingMaintenanceActions, DescribeDBMajorEngineVersions and Service Quotas
GetServiceQuota (moto has none of those for RDS) from botocore's Stubber, whose responses botocore checks
against its own service models. The real pollers run; the samples they render become promtool's input series,
with the `job`/`instance` labels and the `up` series a Prometheus scrape adds.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from botocore.stub import Stubber

from devtools.motoserver import MotoServer
from exporter.exposition import join_fragments
from tests.alerts.test_rules import _CLAUSE, _RANGE, _STRING, _TOKEN, KEYWORDS
from tests.exporter.aws import support
from tests.exporter.aws.stubbing import ACCOUNT, discovering_poller, rds_instance
from tests.exporter.aws.support import REGION, put_points
from tests.support.exporter import Samples
from tests.support.services import installed

moto, moto_session = support.moto, support.moto_session  # fixtures
CHART = Path(__file__).resolve().parent / "qonto_rds_alerts"
SCRAPE = {"job": "pgwarden", "instance": "exporter:9187"}  # what Prometheus adds
GIB = 1024**3
MIB = 1024**2
HOLD = 70  # minutes each input series holds its value (past the longest range, delta's [1h])
ALERTS = (
    "RDSExporterMissingMetrics",
    "RDSExporterDown",
    "RDSExporterErrors",
    "RDSDiskSpaceLimit",
    "RDSDiskSpacePrediction",
    "RDSPostgreSQLMaximumUsedTransaction",
    "RDSCPUUtilization",
    "RDSNonCPUUtilization",
    "RDSMemoryUtilization",
    "RDSSwapUtilization",
    "RDSIOPSUtilization",
    "RDSReplicationLag",
    "RDSQuotaInstanceLimit",
    "RDSQuotaStorageLimit",
    "RDSUnappliedParameters",
    "RDSForcedMaintenance",
)
# What each alert's expression picks in the world below (`group by (dbidentifier)`; "" = an account-wide
# result, which has no dbidentifier).
EXPECTED: dict[str, set[str]] = {
    "RDSDiskSpaceLimit": {"busy"},  # 5 GiB free of 100
    "RDSPostgreSQLMaximumUsedTransaction": {"busy"},  # 3e9 > 2^31
    "RDSCPUUtilization": {"busy"},  # 90 %
    "RDSNonCPUUtilization": {"busy"},  # 10 sessions waiting > 2 vCPUs x 4
    "RDSMemoryUtilization": {"busy"},  # 512 MiB freeable of db.t3.medium's 4 GiB
    "RDSIOPSUtilization": {"busy"},  # 300 IOPS of gp2 100 GiB's 300
    "RDSReplicationLag": {"busy-replica"},  # 120 s
    "RDSQuotaInstanceLimit": {""},  # 3 instances, quota 3
    "RDSUnappliedParameters": {"busy"},  # a parameter group pending reboot
    "RDSForcedMaintenance": {"busy"},  # a forced system update
}  # the others pick nothing: the exporter is up without errors, nothing swaps or fills up, storage 60 %


def render_chart() -> dict[str, Any]:
    """The PrometheusRule's `spec` as the chart's templates render it for its default values (SOURCE.md)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    global_labels = values["global"].get("additionalRuleLabels") or {}
    rules = []
    for name, rule in sorted(values["rules"].items()):
        if rule.get("enabled", True) not in (True, "true", "yes", "on"):
            continue
        expr = rule["expr"].replace("[additionalExprLabels]", "")
        annotations = dict(rule.get("annotations") or {})
        runbook = annotations.get("runbook_url") or values["defaultRunbookUrl"]
        annotations["runbook_url"] = runbook.replace("{{alertName}}", name).replace(
            "{{chartVersion}}", version
        )
        rendered: dict[str, Any] = {"alert": name, "expr": expr}
        if rule.get("for"):
            rendered["for"] = rule["for"]
        labels = {**global_labels, **(rule.get("labels") or {})}
        if labels:
            rendered["labels"] = labels
        rendered["annotations"] = annotations
        rules.append(rendered)
    return {"groups": [{"name": values["rulesGroupName"], "rules": rules}]}


def selector_texts(expr: str) -> list[tuple[str, str]]:
    """(metric name, `{...}` matchers as written) of every vector selector in a PromQL expression."""
    strings = _STRING.findall(expr)  # kept as written: the matchers are evaluated by promtool
    text = _STRING.sub('""', expr)
    text = _RANGE.sub(" ", _CLAUSE.sub(" ", re.sub(r"#[^\n]*", " ", text)))
    for value in strings:
        text = text.replace('""', value, 1)
    found = []
    for name, braces, call in _TOKEN.findall(text):
        if call or name.lower() in KEYWORDS:
            continue
        found.append((name, braces))
    return found


def instance(identifier: str, **extra: Any) -> dict[str, Any]:
    """A DescribeDBInstances entry of PostgreSQL 16.3 (the fields the exporter reads)."""
    group = {"DBParameterGroupName": "pg16", "ParameterApplyStatus": "in-sync"}
    extra = {"StorageType": "gp2", "DBParameterGroups": [group], **extra}
    return rds_instance(
        identifier, REGION, "16.3", "db.t3.medium", dt.datetime(2061, 5, 20, tzinfo=dt.UTC), **extra
    )


INSTANCES = [
    instance(
        "busy",
        DBParameterGroups=[{"DBParameterGroupName": "pg16", "ParameterApplyStatus": "pending-reboot"}],
        ReadReplicaDBInstanceIdentifiers=["busy-replica"],
    ),
    instance("busy-replica", ReadReplicaSourceDBInstanceIdentifier="busy"),
    instance("calm", DBInstanceClass="db.r6g.xlarge", StorageType="gp3", AllocatedStorage=400, Iops=12000),
]
# metric: (unit, busy, calm): the two primaries side by side
PRIMARIES: dict[str, tuple[str, float, float]] = {
    "CPUUtilization": ("Percent", 90.0, 10.0),
    "FreeableMemory": ("Bytes", 512.0 * MIB, 30.0 * GIB),
    "FreeStorageSpace": ("Bytes", 5.0 * GIB, 300.0 * GIB),
    "DBLoadNonCPU": ("None", 10.0, 0.1),
    "ReadIOPS": ("Count/Second", 200.0, 10.0),
    "WriteIOPS": ("Count/Second", 100.0, 10.0),
    "MaximumUsedTransactionIDs": ("Count", 3e9, 1e6),
    "SwapUsage": ("Bytes", 0.0, 0.0),
}
POINTS: dict[str, dict[str, tuple[str, float]]] = {
    "busy": {metric: (unit, busy) for metric, (unit, busy, _) in PRIMARIES.items()},
    "busy-replica": {
        "ReplicaLag": ("Seconds", 120.0),
        "CPUUtilization": ("Percent", 10.0),
        "FreeableMemory": ("Bytes", 3.0 * GIB),
        "FreeStorageSpace": ("Bytes", 60.0 * GIB),
    },
    "calm": {metric: (unit, calm) for metric, (unit, _, calm) in PRIMARIES.items()},
}
FORCED = {
    "PendingMaintenanceActions": [
        {
            "ResourceIdentifier": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:busy",
            "PendingMaintenanceActionDetails": [
                {
                    "Action": "system-update",
                    "Description": "New Operating System update is available",
                    "ForcedApplyDate": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                }
            ],
        }
    ]
}
QUOTAS = (("L-7B6409FD", 3.0), ("L-7ADDB58A", 1000.0), ("L-272F1212", 100.0))  # 600 GiB used of 1000


async def exported(moto: MotoServer) -> Samples:
    """Everything the pollers render for the world, as /metrics serves it."""
    for identifier, points in POINTS.items():
        put_points(identifier, points, minutes_ago=3.5)
    poller = discovering_poller(REGION)
    rds = Stubber(poller.clients.rds("", REGION))
    rds.add_response("describe_db_instances", {"DBInstances": INSTANCES}, {"Filters": [], "MaxRecords": 100})
    rds.add_response("describe_pending_maintenance_actions", FORCED, {"MaxRecords": 100})
    rds.add_response(
        "describe_db_major_engine_versions",
        {"DBMajorEngineVersions": [{"Engine": "postgres", "MajorEngineVersion": "16"}]},
        {"Engine": "postgres", "MajorEngineVersion": "16"},
    )
    quotas = Stubber(poller.clients.service_quotas("", REGION))
    for code, value in QUOTAS:
        answer = {"Quota": {"ServiceCode": "rds", "QuotaCode": code, "QuotaName": code, "Value": value}}
        quotas.add_response("get_service_quota", answer, {"ServiceCode": "rds", "QuotaCode": code})
    with rds, quotas:
        for source in ("rds", "maintenance", "quotas"):
            assert await poller.poll(source), source
    for source in ("instance_types", "cloudwatch"):  # the moto server
        assert await poller.poll(source), source
    rds.assert_no_pending_responses()
    quotas.assert_no_pending_responses()
    view = poller.view
    return Samples(join_fragments([view.discovered(), poller.self_metrics()]).decode())


def input_series(samples: Samples, names: set[str]) -> list[dict[str, str]]:
    """promtool input series: each sample of `names` as a scrape stores it, holding its value; and `up`."""
    series = [{"series": "up" + _labels(SCRAPE), "values": f"1x{HOLD}"}]
    for name in sorted(names):
        for labels, value in samples.all(name):
            series.append({"series": name + _labels({**labels, **SCRAPE}), "values": f"{value!r}x{HOLD}"})
    return series


def _labels(labels: dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "{" + ",".join(f"{k}={quoted(v)}" for k, v in sorted(labels.items()) if v) + "}"


def promtool(*args: str) -> str:
    path = installed("promtool", "prometheus")
    result = subprocess.run([path, *args], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_the_chart_renders_every_rule_of_its_values() -> None:
    rules = render_chart()["groups"][0]["rules"]
    assert tuple(sorted(r["alert"] for r in rules)) == tuple(sorted(ALERTS))
    forced = next(r for r in rules if r["alert"] == "RDSForcedMaintenance")
    assert forced["annotations"]["runbook_url"] == (
        "https://qonto.github.io/database-monitoring-framework/0.0.0/runbooks/rds/RDSForcedMaintenance"
    )


async def test_the_charts_rules_load_and_evaluate_against_what_pgwarden_exports(
    moto: MotoServer, tmp_path: Path
) -> None:
    rules_path = tmp_path / "rds.rules.yml"
    rules_path.write_text(yaml.safe_dump(render_chart(), sort_keys=False))
    assert "SUCCESS: 16 rules found" in promtool("check", "rules", str(rules_path))

    samples = await exported(moto)
    rules = render_chart()["groups"][0]["rules"]
    selectors = {sel for rule in rules for sel in selector_texts(rule["expr"])}
    names = {name for name, _ in selectors}
    exported_names = samples.names() | {"up"}
    assert names <= exported_names, f"not exported: {sorted(names - exported_names)}"

    # every selector, as written in the chart, matches at least one series (promtool evaluates the matchers)
    cases: list[dict[str, Any]] = [
        {"expr": f"group({name}{braces})", "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 1}]}
        for name, braces in sorted(selectors)
    ]
    # every alert's expression picks what the world makes it pick, and nothing else
    for rule in rules:
        picked = sorted(EXPECTED.get(rule["alert"], set()))
        cases.append(
            {
                "expr": f"group by (dbidentifier) ({rule['expr']}\n)",
                "eval_time": "65m",
                "exp_samples": [
                    {"labels": f'{{dbidentifier="{who}"}}' if who else "{}", "value": 1} for who in picked
                ],
            }
        )
    test = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series(samples, names - {"up"}),
                "promql_expr_test": cases,
            }
        ],
    }
    path = tmp_path / "qonto.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    assert "SUCCESS" in promtool("test", "rules", str(path))


def test_selector_texts() -> None:
    expr = 'max(m{a=~"x|y # z"}[5m]) by (c) * on (d) group_left() n > 0 # a comment with {x="y"}'
    assert selector_texts(expr) == [("m", '{a=~"x|y # z"}'), ("n", "")]
