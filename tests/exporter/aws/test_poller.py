"""The AWS pollers against a real moto server: every RDS, backup and CloudWatch metric, cost, failures."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from devtools.motoserver import MotoServer
from exporter.aws import lifecycle
from exporter.aws.cloudwatch import METRICS, window
from exporter.aws.config import DEFAULT_CLOUDWATCH_METRICS, CloudWatchConfig
from exporter.aws.poller import SOURCES, AWSPoller
from exporter.aws.rds import STATUS_CODES, UNKNOWN_STATUS
from exporter.config import parse_config
from exporter.exposition import join_fragments
from tests.exporter.aws import support
from tests.exporter.aws.support import (
    BACKUP_REGION,
    DOWN_DSN,
    MOTO_SOURCES,
    PROD_POINTS,
    REGION,
    ROLE_ACCOUNT,
    ROLE_ARN,
    Recording,
    World,
    aws_config,
    build_world,
    create_postgres,
    put_points,
    rds,
    targets_of,
)
from tests.support.exporter import Samples

moto, moto_session, own_moto = support.moto, support.moto_session, support.own_moto  # fixtures
GIB = 1024**3
# The default metrics a gp2 primary without Performance Insights publishes: all but ReplicaLag and DBLoad*.
DEFAULT_GP2_PRIMARY = 22 - 1 - 3


def make_poller(aws: dict[str, Any], targets: list[dict[str, Any]] | None = None) -> AWSPoller:
    config = parse_config({"targets": targets or [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws})
    assert config.aws is not None
    return AWSPoller(config.aws, config.targets)


async def poll_all(poller: AWSPoller) -> bool:
    results = [await poller.poll(source) for source in MOTO_SOURCES]
    return all(results)


async def polled_world(aws: dict[str, Any] | None = None) -> tuple[World, AWSPoller]:
    """build_world's instances, and a poller (aws_config() unless `aws` is given) that has polled them once."""
    world = build_world()
    poller = make_poller(aws or aws_config())
    assert await poll_all(poller)
    return world, poller


def samples(poller: AWSPoller) -> Samples:
    view = poller.view
    frags = [view.for_target(t, False) for t in {n for i in view.instances for n in i.targets}]
    return Samples(join_fragments([*frags, view.discovered(), poller.self_metrics()]).decode())


def ids(identifier: str, region: str = REGION, account: str = "123456789012") -> dict[str, str]:
    return {"aws_account_id": account, "aws_region": region, "dbidentifier": identifier}


async def test_rds_facts_values_and_labels(moto: MotoServer) -> None:
    world, poller = await polled_world()
    s = samples(poller)
    prod = ids("prod")
    info = s.all("rds_instance_info", **prod)
    assert info == [
        (
            {
                **prod,
                "dbi_resource_id": world.prod["DbiResourceId"],
                "instance_class": "db.t3.medium",
                "engine": "postgres",
                "engine_version": "15.4",
                "storage_type": "gp2",
                "multi_az": "false",
                "deletion_protection": "false",
                "role": "primary",
                "source_dbidentifier": "",
                "pending_modified_values": "false",
                "pending_maintenance": "unknown",  # the maintenance source has not polled
                "performance_insights_enabled": "false",
                "ca_certificate_identifier": "rds-ca-default",
                "arn": world.prod["DBInstanceArn"],
                "status": "available",
            },
            1.0,
        )
    ]
    replica = s.all("rds_instance_info", **ids("prod-replica"))[0][0]
    assert (replica["role"], replica["source_dbidentifier"]) == ("replica", "prod")
    assert s.get("rds_allocated_storage_bytes", **prod) == 100 * GIB
    assert s.get("rds_max_allocated_storage_bytes", **prod) == 500 * GIB
    assert s.get("rds_instance_status", **prod) == 1
    assert s.get("rds_backup_retention_period_seconds", **prod) == 7 * 86400
    restorable = world.prod["LatestRestorableTime"].timestamp()
    assert s.get("rds_latest_restorable_time_seconds", **prod) == pytest.approx(restorable, abs=5)
    # discovery: engine postgres and tag team=db; the stopped one is there with its status
    assert {lbl["dbidentifier"] for lbl, _ in s.all("rds_instance_info")} == {
        "prod",
        "prod-replica",
        "sleepy",
    }
    assert s.get("rds_instance_status", **ids("sleepy")) == STATUS_CODES["stopped"] == 0
    assert s.get("rds_max_allocated_storage_bytes", **ids("sleepy")) is None  # autoscaling off: absent
    # discovered, unconfigured instances carry no target label
    assert all("target" not in lbl for _, lbl, _ in s.samples)


async def test_status_codes_are_prometheus_rds_exporters() -> None:
    """Its README's table ("Supported RDS status"): available 1, busy but running above, stopped 0, not available
    below, -1 for a status it does not map."""
    assert STATUS_CODES == {
        "available": 1,
        "backing-up": 2,
        "starting": 3,
        "modifying": 4,
        "configuring-enhanced-monitoring": 5,
        "storage-initialization": 10,
        "storage-optimization": 11,
        "renaming": 20,
        "stopped": 0,
        "stopping": -2,
        "creating": -3,
        "deleting": -4,
        "rebooting": -5,
        "failed": -6,
        "storage-full": -7,
        "upgrading": -8,
        "maintenance": -9,
        "restore-error": -10,
    }
    assert UNKNOWN_STATUS == -1 and UNKNOWN_STATUS not in STATUS_CODES.values()


async def test_snapshots_and_cross_region_copy(moto: MotoServer) -> None:
    world, poller = await polled_world()
    s = samples(poller)
    prod = ids("prod")
    assert s.get("rds_snapshots", **prod, snapshot_type="manual") == 2
    assert s.get("rds_snapshots", **prod, snapshot_type="automated") == 1
    assert s.get("rds_latest_snapshot_time_seconds", **prod, snapshot_type="manual") == pytest.approx(
        max(world.manual_times), abs=0.001
    )
    assert s.get("rds_latest_snapshot_time_seconds", **prod, snapshot_type="automated") is not None
    # the copy in eu-west-1 is recognised by its original create time; the eu instance named prod is not ours
    copy = s.all("rds_latest_cross_region_snapshot_time_seconds", **prod)
    assert copy == [
        ({**prod, "target_region": BACKUP_REGION}, pytest.approx(world.copy_original_time, abs=0.001))
    ]
    # an instance whose snapshots were never copied has no cross-region series (absent, not 0)
    assert s.all("rds_latest_cross_region_snapshot_time_seconds", **ids("sleepy")) == []


async def test_copy_recognised_by_source_arn_not_name(moto: MotoServer) -> None:
    """Only copies (source ARN or original time) of *this* instance count, never a namesake's snapshots."""
    east, west = rds(), rds(BACKUP_REGION)
    create_postgres(east, "solo", Tags=[{"Key": "team", "Value": "db"}])
    create_postgres(west, "solo")
    west.create_db_snapshot(DBInstanceIdentifier="solo", DBSnapshotIdentifier="namesake")
    poller = make_poller(aws_config())
    assert await poll_all(poller)
    assert samples(poller).all("rds_latest_cross_region_snapshot_time_seconds") == []


async def test_cloudwatch_values_units_and_newest_datapoint(moto: MotoServer) -> None:
    _, poller = await polled_world()
    s = samples(poller)
    for _name, (_unit, value, metric) in PROD_POINTS.items():
        assert s.get(metric, **ids("prod")) == pytest.approx(value), metric  # the newer of two datapoints
    assert s.get("rds_replica_lag_seconds", **ids("prod-replica")) == 3.0
    assert s.get("rds_cpu_usage_percent_average", **ids("prod-replica")) == 7.0
    help_line = next(line for line in s.text.splitlines() if line.startswith("# HELP rds_free_storage_bytes"))
    assert "a scrape makes no AWS call" in help_line


async def test_metric_without_datapoint_is_absent_never_zero(moto: MotoServer) -> None:
    _, poller = await polled_world()
    s = samples(poller)
    assert s.get("rds_burst_balance_percent", **ids("prod")) is None  # no datapoint put
    assert s.get("rds_replica_lag_seconds", **ids("prod")) is None  # not a replica: not even requested
    # a stopped instance is not asked for (its datapoint is never served) and has no storage series
    assert [
        m for m, lbl, _ in s.samples if lbl.get("dbidentifier") == "sleepy" and m.startswith("rds_free")
    ] == []
    assert not any(
        v == 0 for m, _, v in s.samples if m in {"rds_free_storage_bytes", "rds_freeable_memory_bytes"}
    )


async def test_untagged_instances_discovered_without_tag_filter(moto: MotoServer) -> None:
    create_postgres(rds(), "untagged")
    tagged = make_poller(aws_config())
    assert await tagged.poll("rds")
    assert [i.identifier for i in tagged.all_instances()] == []
    everything = make_poller(aws_config(discover={"regions": [REGION]}))
    assert await everything.poll("rds")
    assert [i.identifier for i in everything.all_instances()] == ["untagged"]


async def test_configured_target_outside_discovery_and_assumed_role_account(moto: MotoServer) -> None:
    import boto3

    sts = boto3.client("sts", region_name=REGION)
    creds = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="test-setup")["Credentials"]
    other = rds(
        "eu-central-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    create_postgres(other, "billing")
    create_postgres(rds("ap-south-1"), "named")
    targets = [
        {
            "name": "billing-db",
            "dsn": DOWN_DSN,
            "rds": {"identifier": "billing", "region": "eu-central-1", "account_id": ROLE_ACCOUNT},
        },
        {"name": "named-db", "dsn": DOWN_DSN, "rds": {"identifier": "named", "region": "ap-south-1"}},
    ]
    poller = make_poller(
        {"accounts": [{"role_arn": ROLE_ARN, "regions": ["eu-central-1"]}], "retries": {"max_attempts": 1}},
        targets,
    )
    assert await poll_all(poller)
    s = Samples(
        join_fragments(
            [poller.view.for_target("billing-db", True), poller.view.for_target("named-db", True)]
        ).decode()
    )
    assert (
        s.get("rds_instance_status", **ids("billing", "eu-central-1", ROLE_ACCOUNT), target="billing-db") == 1
    )
    assert s.get("rds_instance_status", **ids("named", "ap-south-1"), target="named-db") == 1
    calls = poller.stats.snapshot()[0]
    assert calls[("sts", "AssumeRole")] == 1  # once, then cached until near expiry


ORIGINAL_METRICS = DEFAULT_CLOUDWATCH_METRICS[:11]  # the defaults before the lifecycle metrics, one cadence


async def test_get_metric_data_calls_per_poll_for_600_metrics(moto: MotoServer) -> None:
    """60 gp2 primaries x 10 metrics (ReplicaLag is for replicas) = 600 metrics: ceil(600/500) = 2 calls."""
    east = rds()
    for n in range(60):
        create_postgres(east, f"db{n:02d}", AllocatedStorage=20)
    metrics = [{"name": m, "interval": "5m"} for m in ORIGINAL_METRICS]
    poller = make_poller(aws_config(discover={"regions": [REGION]}, cloudwatch={"metrics": metrics}))
    assert await poller.poll("rds")
    recording = Recording(moto)
    recording.start()
    before = poller.stats.snapshot()
    assert await poller.poll("cloudwatch")
    after = poller.stats.snapshot()
    recorded = recording.stop()
    calls = after[0][("cloudwatch", "GetMetricData")] - before[0].get(("cloudwatch", "GetMetricData"), 0)
    assert after[2] - before[2] == 600
    assert calls == math.ceil(600 / 500) == 2
    assert targets_of(recorded, "GetMetricData") == 2  # and moto saw exactly those


async def test_endpoint_stopped_mid_test_keeps_last_values_and_counts_errors(own_moto: MotoServer) -> None:
    _, poller = await polled_world()
    good = samples(poller)
    own_moto.stop()
    poller.requested.clear()  # every CloudWatch metric due again
    for source in SOURCES:
        assert not await poller.poll(source)
        assert poller.failures[source] == 1
    bad = samples(poller)
    for metric in ("rds_free_storage_bytes", "rds_instance_status", "rds_snapshots"):
        assert bad.all(metric) == good.all(metric), metric
    errors = bad.all("pgwarden_aws_api_errors_total")
    unreachable = {lbl["api"] for lbl, v in errors if lbl["code"] == "EndpointConnectionError" and v >= 1}
    assert unreachable == {"rds", "cloudwatch", "ec2", "service-quotas"}
    # the only other errors: moto's Service Quotas has no RDS quotas, before the stop already
    before = good.all("pgwarden_aws_api_errors_total")
    assert [e for e in errors if e[0]["code"] != "EndpointConnectionError"] == before
    assert {(lbl["api"], lbl["code"]) for lbl, _ in before} == {("service-quotas", "NoSuchResourceException")}
    assert bad.get("rds_exporter_errors_total") == sum(v for _, v in errors) > 0
    for source in SOURCES:
        assert bad.get("pgwarden_aws_data_age_seconds", source=source) >= good.get(  # type: ignore[operator]
            "pgwarden_aws_data_age_seconds", source=source
        )


async def test_backoff_grows_with_jitter_and_is_capped(moto: MotoServer) -> None:
    poller = make_poller(aws_config(cloudwatch={"interval": "60s"}, retries={"backoff_max": "10m"}))
    assert poller.next_delay("cloudwatch") == 60
    poller.failures["cloudwatch"] = 1
    delays = {poller.next_delay("cloudwatch") for _ in range(50)}
    assert all(30 <= d <= 60 for d in delays) and len(delays) > 1  # within one interval, jittered
    poller.failures["cloudwatch"] = 3
    assert all(120 <= poller.next_delay("cloudwatch") <= 240 for _ in range(50))  # 60s x 2^2
    poller.failures["cloudwatch"] = 20
    assert all(300 <= poller.next_delay("cloudwatch") <= 600 for _ in range(50))


def test_window_is_aligned_to_the_period_and_ends_delay_ago() -> None:
    config = CloudWatchConfig(period=60, delay=120, lookback=300)
    start, end = window(1_000_000_030.0, config)
    assert end.timestamp() == 999_999_900.0  # floor((now - 120) / 60) * 60
    assert start.timestamp() == end.timestamp() - 300
    assert end.timestamp() % 60 == 0


async def test_datapoint_outside_the_window_is_not_served(moto: MotoServer) -> None:
    create_postgres(rds(), "fresh", Tags=[{"Key": "team", "Value": "db"}])
    put_points("fresh", {"CPUUtilization": ("Percent", 99.0)}, minutes_ago=30)  # older than the lookback
    poller = make_poller(aws_config())
    assert await poll_all(poller)
    assert samples(poller).get("rds_cpu_usage_percent_average", **ids("fresh")) is None


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>r</RequestId></ErrorResponse>"
)


async def test_injected_throttling_keeps_last_values_counts_and_backs_off(moto: MotoServer) -> None:
    """AWS answers 400 Throttling (injected through botocore's before-send hook, the rest is real)."""
    from botocore.awsrequest import AWSResponse

    _, poller = await polled_world(aws_config(snapshots={"interval": "60s"}))
    good = samples(poller)

    def throttle(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body(THROTTLED))  # type: ignore[arg-type]

    for region in (REGION, BACKUP_REGION):
        poller.clients.rds("", region).meta.events.register("before-send.rds.DescribeDBSnapshots", throttle)
    assert not await poller.poll("snapshots")
    assert not await poller.poll("snapshots")
    bad = samples(poller)
    assert bad.all("rds_snapshots") == good.all("rds_snapshots") != []
    assert bad.get("pgwarden_aws_api_errors_total", api="rds", code="Throttling") == 4  # 2 regions x 2 polls
    assert poller.failures["snapshots"] == 2
    assert {60 <= poller.next_delay("snapshots") <= 120 for _ in range(20)} == {True}  # 60s x 2^1, jittered
    assert await poller.poll("rds")  # other operations are unaffected


def test_hashmod_is_prometheus_hashmod() -> None:
    from exporter.aws.shard import hashmod

    assert hashmod("baz", 1000) == 976  # the vector in Prometheus' relabel tests


async def test_shards_split_the_polling_and_discovery_still_lists_all(moto: MotoServer) -> None:
    from exporter.aws.discovery import discovery_groups

    east = rds()
    for n in range(12):
        create_postgres(east, f"db{n:02d}", AllocatedStorage=20)
    served: list[set[str]] = []
    requested = 0
    for index in (0, 1):
        poller = make_poller(aws_config(discover={"regions": [REGION]}, shard={"index": index, "total": 2}))
        assert await poll_all(poller)
        served.append({i.identifier for i in poller.view.instances})
        requested += poller.stats.snapshot()[2]
        listed = {g["labels"]["__param_target"] for g in discovery_groups("x:1", [], poller.view)}
        assert listed == {f"db{n:02d}" for n in range(12)}
    assert served[0] and served[1] and not served[0] & served[1]
    assert served[0] | served[1] == {f"db{n:02d}" for n in range(12)}
    assert requested == 12 * DEFAULT_GP2_PRIMARY  # each instance's metrics requested by one replica only


class Clock:
    """The poller's clock, moved by the test (the cadence is about time between polls)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_default_cadence_fast_metrics_every_poll_slow_ones_every_third(moto: MotoServer) -> None:
    """Defaults: a poll every 5 minutes asks for the 6 fast metrics of a gp2 primary, every third poll (15
    minutes) for the 12 slow ones too; a slow metric keeps serving its value in between."""
    build_world()
    config = parse_config(
        {"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config(cloudwatch={"interval": "5m"})}
    )
    assert config.aws is not None
    clock = Clock()
    poller = AWSPoller(config.aws, config.targets, clock=clock)
    assert await poller.poll("rds")
    asked = []
    for _ in range(4):
        before = poller.stats.snapshot()[2]
        assert await poller.poll("cloudwatch")
        asked.append(poller.stats.snapshot()[2] - before)
        if len(asked) == 1:
            first = samples(poller)
        clock.now += 300
    # prod and prod-replica (gp2); the replica adds ReplicaLag; sleepy is stopped
    fast, slow = 6, 12
    assert asked == [2 * (fast + slow) + 1, 2 * fast + 1, 2 * fast + 1, 2 * (fast + slow) + 1]
    later = samples(poller)
    assert later.get("rds_read_iops_average", **ids("prod")) == first.get(
        "rds_read_iops_average", **ids("prod")
    )
    assert later.get("rds_read_iops_average", **ids("prod")) == 100.0


async def test_lifecycle_series_from_moto_replica_parameter_group_and_expected_copies(
    moto: MotoServer,
) -> None:
    """What moto has: the replica's source, the CA identifier, in-sync parameter groups, expected copies."""
    _, poller = await polled_world()
    s = samples(poller)
    assert s.all("rds_parameter_group_pending_reboot", **ids("prod")) == [
        ({**ids("prod"), "parameter_group": "default.postgres15"}, 0.0)
    ]
    assert s.all("rds_pending_modified_values", **ids("prod")) == []  # moto applies every change at once
    assert s.all("rds_expected_cross_region_copy", **ids("prod")) == [
        ({**ids("prod"), "target_region": BACKUP_REGION}, 1.0)
    ]
    # moto gives no CertificateDetails: absent, never 0
    assert s.get("rds_certificate_expiry_timestamp_seconds", **ids("prod")) is None


async def test_events_counted_once_from_zero_with_each_category(moto: MotoServer) -> None:
    """An instance created after the first events poll: its creation (and moto's backup events) are counted by
    the next poll, once, although the windows overlap; every category starts at 0."""
    create_postgres(rds(), "early", Tags=[{"Key": "team", "Value": "db"}])
    config = parse_config({"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config()})
    assert config.aws is not None
    clock = Clock()  # the exporter starts after `early` was created: its events are not counted
    poller = AWSPoller(config.aws, config.targets, clock=clock)
    assert await poller.poll("rds")
    assert await poller.poll("events")
    s = samples(poller)
    assert {
        lbl["event_category"]: v for lbl, v in s.all("rds_events_total", **ids("early"))
    } == dict.fromkeys(lifecycle.EVENT_CATEGORIES, 0.0)
    create_postgres(rds(), "late", Tags=[{"Key": "team", "Value": "db"}])
    clock.now = time.time() + 1
    assert await poller.poll("rds")
    for _ in range(2):  # the second window overlaps the first: nothing counted twice
        assert await poller.poll("events")
        clock.now += 60
    s = samples(poller)
    late = {lbl["event_category"]: v for lbl, v in s.all("rds_events_total", **ids("late"))}
    assert late["creation"] == 1
    assert late["failover"] == 0 and set(lifecycle.EVENT_CATEGORIES) <= late.keys()
    assert s.get("rds_events_total", **ids("early"), event_category="creation") == 0


async def test_an_instance_that_stops_loses_its_cloudwatch_series_at_the_next_poll(moto: MotoServer) -> None:
    """Values kept between a slow metric's polls are not kept for an instance that no longer publishes."""
    _, poller = await polled_world()
    assert samples(poller).get("rds_read_iops_average", **ids("prod")) == 100.0
    rds().stop_db_instance(DBInstanceIdentifier="prod")
    assert await poller.poll("rds")
    assert await poller.poll("cloudwatch")  # nothing is due: only the cache is pruned
    s = samples(poller)
    assert s.get("rds_instance_status", **ids("prod")) == 0
    assert [
        m for m, lbl, _ in s.samples if lbl.get("dbidentifier") == "prod" and m in _CLOUDWATCH_FAMILIES
    ] == []
    assert s.get("rds_replica_lag_seconds", **ids("prod-replica")) == 3.0  # the others keep theirs


_CLOUDWATCH_FAMILIES = {m.family.name for m in METRICS.values()}


class _Stop(BaseException):
    """Ends a poll loop from its sleep (the loop survives any Exception)."""


async def test_the_poll_loop_backs_off_after_failed_and_crashed_polls_then_keeps_the_interval(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The background loop of one source: AWS throttling fails a poll, a bug crashes the next (logged, counted
    as a failure); each is followed by the backoff, and the first good poll by the interval again."""
    from botocore.awsrequest import AWSResponse

    config = parse_config(
        {"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config(rds={"interval": "60s"})}
    )
    assert config.aws is not None
    slept: list[tuple[float, int]] = []
    throttling = [True]

    async def sleep(seconds: float) -> None:
        slept.append((seconds, poller.failures["rds"]))
        if len(slept) == 1:  # the next poll fetches, then crashes
            throttling[0] = False
            monkeypatch.setattr(poller, "_build_view", lambda: 1 / 0)
        elif len(slept) == 2:
            monkeypatch.undo()
        else:
            raise _Stop

    poller = AWSPoller(config.aws, config.targets, sleep=sleep)

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if not throttling[0]:
            return None
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body(THROTTLED))  # type: ignore[arg-type]

    for unit in poller.units("rds"):
        poller.clients.rds(*unit).meta.events.register("before-send.rds.DescribeDBInstances", throttle)
    with pytest.raises(_Stop):
        await poller._run("rds")
    (first, after_one), (second, after_two), (third, after_good) = slept
    assert (after_one, after_two, after_good) == (1, 1, 0)  # the crash came after a good fetch: 0 + 1
    assert 30 <= first <= 60 and 30 <= second <= 60 and third == 60
    (crash,) = [r for r in caplog.records if r.getMessage() == "aws poll crashed"]
    assert (crash.source, crash.error) == ("rds", "ZeroDivisionError")  # type: ignore[attr-defined]
    assert poller.polled["rds"].is_set()
