"""The pollers' own series: AWS calls and errors, the CloudWatch metrics billed, data age, and the build info and
error counter prometheus-rds-exporter's alerts read. Rendered per scrape from in-memory counters."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping

from exporter.aws.clients import ApiStats
from exporter.exposition import Exposition, Family, Fragment

API_CALLS = Family(
    "pgwarden_aws_api_calls_total",
    "counter",
    "AWS API calls made by the background pollers.",
    ("api", "operation"),
)
METRICS_REQUESTED = Family(
    "pgwarden_cloudwatch_metrics_requested_total",
    "counter",
    "Metrics requested from CloudWatch GetMetricData, the unit AWS bills ($0.01 per 1,000).",
)
API_ERRORS = Family(
    "pgwarden_aws_api_errors_total", "counter", "Failed AWS API calls, by error code.", ("api", "code")
)
BUILD_INFO = Family(
    "rds_exporter_build_info",
    "gauge",
    "1, labelled with the exporter's version (prometheus-rds-exporter's family: its alerts read it).",
    ("version", "commit_sha", "build_date"),
)
ERRORS = Family(
    "rds_exporter_errors_total",
    "counter",
    "AWS API calls that failed, all APIs and codes together (pgwarden_aws_api_errors_total has the breakdown).",
)
DATA_AGE = Family(
    "pgwarden_aws_data_age_seconds",
    "gauge",
    "Age of the oldest AWS data served for each source (rds, snapshots, events, maintenance, cloudwatch, "
    "instance_types, quotas): grows while polls fail.",
    ("source",),
)
SELF_FAMILIES = (API_CALLS, METRICS_REQUESTED, API_ERRORS, BUILD_INFO, ERRORS, DATA_AGE)


def render_self(stats: ApiStats, ages: Mapping[str, float]) -> list[Fragment]:
    """The pollers' own metrics, rendered per scrape from in-memory counters (no AWS call)."""
    calls, errors, requested = stats.snapshot()
    out = Exposition()
    for (api, op), n in sorted(calls.items()):
        out.add(API_CALLS, out.labels(("api", "operation"), (api, op)), n)
    out.add(METRICS_REQUESTED, "", requested)
    for (api, code), n in sorted(errors.items()):
        out.add(API_ERRORS, out.labels(("api", "code"), (api, code)), n)
    out.add(BUILD_INFO, out.labels(BUILD_INFO.labels, build_labels()), 1)
    out.add(ERRORS, "", sum(errors.values()))
    for source, age in ages.items():
        out.add(DATA_AGE, out.labels(("source",), (source,)), round(age, 3))
    return out.fragments()


def build_labels() -> tuple[str, str, str]:
    """version (the installed package's), commit_sha and build_date (PGWARDEN_COMMIT_SHA, PGWARDEN_BUILD_DATE
    where the image sets them, else `unknown`)."""
    try:
        version = importlib.metadata.version("pgwarden")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    env = os.environ
    return version, env.get("PGWARDEN_COMMIT_SHA", "unknown"), env.get("PGWARDEN_BUILD_DATE", "unknown")
