"""The `aws:` section: the SPEC's sketch parses, defaults, every error with its key path, --check-config."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from exporter.assemble import resolve_targets
from exporter.aws.clients import DEFAULT_ACCOUNT
from exporter.aws.config import DEFAULT_CLOUDWATCH_METRICS, AWSConfig
from exporter.aws.rds import plan_units
from exporter.cli import summary
from exporter.config import ConfigError, parse_config

SPEC_SKETCH = """
targets:
  - name: production
    dsn: host=db dbname=app
    rds: {identifier: skillancer-production, region: us-east-1, backup_regions: [eu-west-1]}
aws:
  discover: {regions: [us-east-1], tags: {team: db}}
  cloudwatch: {interval: 60s, period: 60s, delay: 2m}
"""


def with_aws(aws: Any, **target: Any) -> dict[str, Any]:
    return {"targets": [{"name": "t", "dsn": "host=h dbname=d", **target}], "aws": aws}


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


def test_spec_sketch_parses_with_documented_defaults() -> None:
    config = parse_config(yaml.safe_load(SPEC_SKETCH))
    aws = config.aws
    assert aws is not None and aws.discover is not None
    assert aws.discover.regions == ("us-east-1",) and aws.discover.tags == {"team": "db"}
    assert aws.discover.engines == ("postgres",)
    assert (aws.cloudwatch.interval, aws.cloudwatch.period, aws.cloudwatch.delay) == (60, 60, 120)
    assert (aws.rds.interval, aws.snapshots.interval) == (300, 900)
    assert aws.cloudwatch.metric_names == DEFAULT_CLOUDWATCH_METRICS and len(DEFAULT_CLOUDWATCH_METRICS) == 22
    assert (aws.events.interval, aws.maintenance.interval) == (300, 3600)
    assert parse_config(with_aws({})).aws.cloudwatch.interval == 300  # type: ignore[union-attr]
    assert aws.endpoint_url is None and aws.accounts == ()


def test_no_aws_section_means_no_aws() -> None:
    assert parse_config(with_aws(None)).aws is None
    assert parse_config({"targets": [{"name": "t", "dsn": "host=h"}]}).aws is None


def test_aws_errors_are_all_reported_with_key_paths() -> None:
    errors = errors_of(
        with_aws(
            {
                "discover": {"regions": ["us-east-1", "mars-north-9x"], "tagz": {}},
                "cloudwatch": {"period": "90s", "metrics": ["CPUUtilization", "Bo gus"], "interval": "0s"},
                "accounts": [{"role_arn": "not-an-arn"}],
                "snapshots": {"interval": "soon"},
                "endpoint": "http://x",
            },
            rds={"identifier": "x", "region": "us-east-1", "account_id": "12"},
        )
    )
    assert "aws.discover.tagz: unknown key" in errors
    assert any(e.startswith("aws.discover.regions: not an AWS region: mars-north-9x") for e in errors)
    assert any(e.startswith("aws.cloudwatch.metrics.1.name: String should match pattern") for e in errors)
    assert any(e.startswith("aws.cloudwatch.interval: the interval must be at least 1s") for e in errors)
    assert any(e.startswith("aws.accounts.0.role_arn: String should match pattern") for e in errors)
    assert any(e.startswith("aws.snapshots.interval: invalid duration 'soon'") for e in errors)
    assert "aws.endpoint: unknown key" in errors
    assert any(e.startswith("targets.0.rds.account_id: String should match pattern") for e in errors)


def test_period_must_be_whole_minutes_and_lookback_a_period() -> None:
    errors = errors_of(with_aws({"cloudwatch": {"period": "90s"}}))
    assert errors == [
        "aws.cloudwatch: period must be a multiple of 60s (RDS publishes one datapoint a minute)"
    ]
    errors = errors_of(with_aws({"cloudwatch": {"interval": "5m", "lookback": "1m"}}))
    assert errors == [
        "aws.cloudwatch: lookback must cover the interval (a shorter window never fetches the datapoints "
        "between polls)"
    ]
    errors = errors_of(with_aws({"cloudwatch": {"metrics": [{"name": "DBLoad", "period": "30s"}, "DBLoad"]}}))
    assert errors == [
        "aws.cloudwatch.metrics.0: period must be a multiple of 60s (RDS publishes one datapoint a minute)",
    ]
    errors = errors_of(with_aws({"cloudwatch": {"metrics": ["DBLoad", {"name": "DBLoad", "stat": "Mean"}]}}))
    assert errors[0].startswith("aws.cloudwatch.metrics.1.stat: String should match pattern")


def test_metrics_accept_unknown_names_and_per_metric_cadence_and_resolution() -> None:
    from exporter.aws.cloudwatch import SLOW, generated_name, resolve

    metrics = [
        "FreeStorageSpace",
        "ReadIOPS",
        {"name": "BinLogDiskUsage", "interval": "1h"},
        {"name": "OldestReplicationSlotLag", "stat": "p99", "period": "5m"},
        {"name": "CPUUtilization", "stat": "Maximum", "interval": "10s"},
    ]
    config = parse_config(with_aws({"cloudwatch": {"interval": "2m", "metrics": metrics}})).aws
    assert config is not None
    resolved = {m.name: m for m in resolve(config.cloudwatch)}
    assert resolved["FreeStorageSpace"].family.name == "rds_free_storage_bytes"
    assert (resolved["FreeStorageSpace"].interval, resolved["FreeStorageSpace"].period) == (120, 60)
    assert resolved["ReadIOPS"].interval == SLOW == 900  # the table's cadence
    assert resolved["BinLogDiskUsage"].family.name == "rds_bin_log_disk_usage_average"
    assert resolved["BinLogDiskUsage"].interval == 3600
    lag = resolved["OldestReplicationSlotLag"]
    assert (lag.family.name, lag.stat, lag.period) == ("rds_oldest_replication_slot_lag_p99", "p99", 300)
    cpu = resolved["CPUUtilization"]
    assert (cpu.stat, cpu.interval) == ("Maximum", 120)  # never more often than the poll
    assert generated_name("EBSIOBalance%", "Average") == "rds_ebsio_balance_percent_average"
    assert generated_name("DBLoadNonCPU", "p99.9") == "rds_db_load_non_cpu_p99_9"


def test_accounts_need_regions_and_one_role_per_account() -> None:
    role = "arn:aws:iam::222222222222:role/read"
    assert errors_of(with_aws({"accounts": [{"role_arn": role}]})) == [
        "aws: accounts: 222222222222 lists no regions and there is no discover.regions"
    ]
    twice = {
        "accounts": [
            {"role_arn": role, "regions": ["us-east-1"]},
            {"role_arn": role + "2", "regions": ["eu-west-1"]},
        ]
    }
    assert errors_of(with_aws(twice)) == ["aws: one role per account: 222222222222 listed twice"]


def test_units_cover_discovery_accounts_and_configured_targets() -> None:
    role = "arn:aws:iam::222222222222:role/read"
    config = parse_config(
        {
            "targets": [
                {"name": "a", "dsn": "host=h", "rds": {"identifier": "a", "region": "ap-south-1"}},
                {
                    "name": "b",
                    "dsn": "host=h",
                    "rds": {"identifier": "b", "region": "us-east-1", "account_id": "222222222222"},
                },
            ],
            "aws": {"discover": {"regions": ["us-east-1"]}, "accounts": [{"role_arn": role}]},
        }
    )
    assert config.aws is not None
    plans = plan_units(config.aws, config.targets)
    assert sorted(plans) == [
        (DEFAULT_ACCOUNT, "ap-south-1"),
        (DEFAULT_ACCOUNT, "us-east-1"),
        ("222222222222", "us-east-1"),
    ]
    assert plans[(DEFAULT_ACCOUNT, "ap-south-1")].discover is False  # described by identifier only
    assert plans[("222222222222", "us-east-1")].identifiers == {"b": ["b"]}


def test_check_config_summary_names_the_aws_sources() -> None:
    config = parse_config(yaml.safe_load(SPEC_SKETCH))
    text = summary(config, resolve_targets(config))
    assert "aws: 1 account/region unit(s): default/us-east-1 (discover)" in text
    assert (
        "rds every 5m, snapshots every 15m, cloudwatch every 1m (period 1m, delay 2m, 22 metrics), events every 5m, "
        "maintenance every 1h" in text
    )
    implied = parse_config(with_aws(None, rds={"identifier": "x", "region": "us-east-1"}))
    assert implied.aws is None and implied.polled_aws == AWSConfig()
    text = summary(implied, resolve_targets(implied))
    assert "aws: no aws: section; the targets' rds: blocks are polled with the default aws: settings" in text
    assert "aws: 1 account/region unit(s): default/us-east-1" in text
    off = parse_config(with_aws(None))
    assert off.polled_aws is None and "aws:" not in summary(off, resolve_targets(off))


def test_shard_index_must_be_below_total() -> None:
    assert errors_of(with_aws({"shard": {"index": 3, "total": 3}})) == [
        "aws.shard: index must be below total (shards are numbered from 0)"
    ]
    assert parse_config(with_aws({"shard": {"index": 0, "total": 1}})).aws is not None


def aws_doc() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[3] / "docs" / "aws.md").read_text()


def test_aws_doc_documents_every_aws_family_and_its_example_config_parses() -> None:
    from exporter.aws.render import AWS_FAMILIES

    section = aws_doc()
    missing = [f.name for f in AWS_FAMILIES if f"`{f.name}`" not in section]
    assert missing == []
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(yaml.safe_load(example))
    assert config.aws is not None and config.aws.accounts[0].account_id == "222222222222"
