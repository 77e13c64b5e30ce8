"""The restore steps, one function each, for `restore_drill` and `recover`.

Every RDS call goes through `RdsApi`'s clients in a thread, under the `aws.timeout`; every call that changes
something goes through the decision's `responder.effects.EffectGate`, which deletes only an instance the
decision owns: whatever else goes wrong, nothing else is deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_delay, wait_exponential

from responder.aws import RdsApi
from responder.clock import iso as iso  # the steps' callers write moments as engine.iso
from responder.drills.models import PointInTime, SourceKind
from responder.effects import ApiCall, EffectGate

log = logging.getLogger("responder.drills")

IDENTIFIER_MAX = 63
FIRST_POLL = 2.0  # seconds between the first status polls; doubled up to MAX_POLL
MAX_POLL = 30.0


class DrillError(Exception):
    """A step could not be done; the message says which and why."""


# `call(rds, fn)`: a blocking boto3 call in a thread, under the configured AWS timeout (the steps' callers use it).
call = RdsApi.call


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (`2024-01-15T14:30:00Z`); a time without an offset is UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def derived_identifier(identifier: str, suffix: str) -> str:
    """`<identifier><suffix>` within RDS's 63 characters (the identifier is shortened, never the suffix)."""
    return identifier[: IDENTIFIER_MAX - len(suffix)].rstrip("-") + suffix


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in instance.get("TagList") or []}


# ---- the source ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What a restore starts from, and the moment its data is from (the recovery point)."""

    kind: SourceKind
    region: str
    recovery_point: datetime
    snapshot: str | None = None  # identifier (or ARN) of the snapshot restored
    restore_time: datetime | None = None  # point_in_time only

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "region": self.region,
            "snapshot": self.snapshot,
            "restore_time": iso(self.restore_time),
            "recovery_point": iso(self.recovery_point),
        }


def _newest(snapshots: Sequence[dict[str, Any]], what: str) -> dict[str, Any]:
    usable = [s for s in snapshots if s.get("Status") == "available" and s.get("SnapshotCreateTime")]
    if not usable:
        raise DrillError(f"no available {what}")
    return max(usable, key=lambda s: s["SnapshotCreateTime"])


async def _snapshots(rds: RdsApi, region: str, identifier: str, kind: str | None) -> list[dict[str, Any]]:
    client = rds.client(region)
    args: dict[str, Any] = {"DBInstanceIdentifier": identifier}
    if kind is not None:
        args["SnapshotType"] = kind

    def fetch() -> list[dict[str, Any]]:
        pages = client.get_paginator("describe_db_snapshots").paginate(**args)
        return [dict(s) for page in pages for s in page.get("DBSnapshots", [])]

    return await call(rds, fetch)


def restorable_window(instance: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """(EarliestRestorableTime, LatestRestorableTime) of an instance, either None when RDS gives none."""
    earliest, latest = instance.get("EarliestRestorableTime"), instance.get("LatestRestorableTime")
    return (
        earliest if isinstance(earliest, datetime) else None,
        latest if isinstance(latest, datetime) else None,
    )


def check_restore_time(instance: dict[str, Any], when: datetime) -> None:
    """Raise DrillError unless `when` lies in the instance's restorable window (saying what is possible)."""
    earliest, latest = restorable_window(instance)
    if latest is None:
        raise DrillError("the instance has no LatestRestorableTime (are automated backups on?)")
    possible = f"possible: from {iso(earliest) or 'the oldest retained backup'} to {iso(latest)}"
    if when > latest:
        raise DrillError(f"{iso(when)} is after the latest restorable time; {possible}")
    if earliest is not None and when < earliest:
        raise DrillError(f"{iso(when)} is before the earliest restorable time; {possible}")


async def choose_source(
    rds: RdsApi,
    identifier: str,
    region: str,
    kind: SourceKind,
    point_in_time: PointInTime | None = None,
    copy_region: str | None = None,
) -> Source:
    """The newest snapshot of the chosen kind, or a point in time inside the restorable window."""
    if kind == "latest_snapshot":
        snap = _newest(await _snapshots(rds, region, identifier, None), f"snapshot of {identifier}")
        return Source(kind, region, snap["SnapshotCreateTime"], str(snap["DBSnapshotIdentifier"]))
    if kind == "latest_automated_snapshot":
        snaps = await _snapshots(rds, region, identifier, "automated")
        snap = _newest(snaps, f"automated snapshot of {identifier}")
        return Source(kind, region, snap["SnapshotCreateTime"], str(snap["DBSnapshotIdentifier"]))
    if kind == "cross_region_copy":
        if copy_region is None:
            raise DrillError("cross_region_copy needs a region")
        snap = _newest(
            await _snapshots(rds, copy_region, identifier, None), f"copy of {identifier} in {copy_region}"
        )
        # A copy is as old as the snapshot it copies, not as the copy itself.
        point = snap.get("OriginalSnapshotCreateTime") or snap["SnapshotCreateTime"]
        return Source(kind, copy_region, point, str(snap["DBSnapshotArn"] or snap["DBSnapshotIdentifier"]))
    instance = await describe(rds, identifier, region)
    pit = point_in_time or PointInTime(before=600.0)
    if pit.at is not None:
        when = parse_time(pit.at)
    else:
        latest = restorable_window(instance)[1]
        if latest is None:
            raise DrillError(f"{identifier} has no LatestRestorableTime (are automated backups on?)")
        when = datetime.fromtimestamp(latest.timestamp() - (pit.before or 0.0), UTC)
    check_restore_time(instance, when)
    return Source(kind, region, when, restore_time=when)


# ---- restore, wait, delete --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreOptions:
    instance_class: str | None = None
    db_subnet_group: str | None = None
    vpc_security_group_ids: tuple[str, ...] = ()


def restore_call(
    source: Source,
    identifier: str,
    new_identifier: str,
    options: RestoreOptions,
    tags: dict[str, str],
    settings: Mapping[str, Any] | None = None,
) -> ApiCall:
    """The RestoreDBInstanceFromDBSnapshot or RestoreDBInstanceToPointInTime call for this source: a cheap
    instance (Single-AZ, no deletion protection) unless `settings` (restore parameters copied from production,
    for an instance that will replace it) say otherwise."""
    params: dict[str, Any] = {
        "DBInstanceClass": options.instance_class,
        "DBSubnetGroupName": options.db_subnet_group,
        "VpcSecurityGroupIds": list(options.vpc_security_group_ids) or None,
        "MultiAZ": False,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        **(settings or {}),
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }
    params = {k: v for k, v in params.items() if v is not None}
    if source.restore_time is not None:
        return ApiCall(
            "RestoreDBInstanceToPointInTime",
            source.region,
            {
                "SourceDBInstanceIdentifier": identifier,
                "TargetDBInstanceIdentifier": new_identifier,
                "RestoreTime": source.restore_time,
                **params,
            },
        )
    return ApiCall(
        "RestoreDBInstanceFromDBSnapshot",
        source.region,
        {"DBInstanceIdentifier": new_identifier, "DBSnapshotIdentifier": source.snapshot, **params},
    )


async def describe(rds: RdsApi, identifier: str, region: str) -> dict[str, Any]:
    return await rds.describe_instance(identifier, region)


async def find(rds: RdsApi, identifier: str, region: str) -> dict[str, Any] | None:
    """The instance, or None when RDS does not know it."""
    client = rds.client(region)
    try:
        return await describe(rds, identifier, region)
    except client.exceptions.DBInstanceNotFoundFault:
        return None
    except LookupError:
        return None


Progress = Callable[[str, float], Awaitable[None]]


async def wait_available(
    rds: RdsApi, identifier: str, region: str, wait_for: float, progress: Progress | None = None
) -> tuple[float, dict[str, Any]]:
    """Poll until the instance is `available`: FIRST_POLL seconds apart, doubling up to MAX_POLL, the last poll
    at `wait_for`; (seconds waited, the instance). `progress(status, seconds)` hears of every new status."""
    start = time.monotonic()
    last_status: str | None = None

    async def poll() -> tuple[float, dict[str, Any]] | None:
        nonlocal last_status
        instance = await find(rds, identifier, region)
        status = str(instance.get("DBInstanceStatus") if instance else "not found")
        elapsed = time.monotonic() - start
        if status != last_status and progress is not None:
            await progress(status, elapsed)
        last_status = status
        if instance is not None and status == "available":
            return elapsed, instance
        if status in ("failed", "incompatible-restore", "incompatible-parameters", "deleting"):
            raise DrillError(f"{identifier} is {status}")
        return None

    backoff = wait_exponential(multiplier=FIRST_POLL, max=MAX_POLL)

    def pause(state: RetryCallState) -> float:
        return min(backoff(state), wait_for - (state.seconds_since_start or 0.0))

    def timed_out(state: RetryCallState) -> NoReturn:
        raise DrillError(f"{identifier} not available after {wait_for:g}s (status {last_status})")

    retrying = AsyncRetrying(
        retry=retry_if_result(lambda found: found is None),
        wait=pause,
        stop=stop_after_delay(wait_for),
        retry_error_callback=timed_out,
    )
    found: tuple[float, dict[str, Any]] = await retrying(poll)
    return found


async def delete_owned_instance(
    gate: EffectGate, rds: RdsApi, identifier: str, region: str
) -> dict[str, Any]:
    """Delete an instance the gate's decision owns (no final snapshot, automated backups too); EffectRefused
    for any other. In dry-run the deletion is journaled as a plan, not made."""
    instance = await find(rds, identifier, region)
    if instance is None:
        return {"deleted": True, "status": "not found"}
    if instance.get("DBInstanceStatus") == "deleting":
        return {"deleted": True, "status": "deleting"}
    api = ApiCall(
        "DeleteDBInstance",
        region,
        {"DBInstanceIdentifier": identifier, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
    )
    answer = await gate.aws(rds, api)
    if answer is None:
        return {"deleted": False, "status": "dry-run"}
    return {"deleted": True, "status": answer.get("DBInstance", {}).get("DBInstanceStatus")}


def endpoint_of(instance: dict[str, Any]) -> tuple[str, int]:
    endpoint = instance.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise DrillError(f"{instance.get('DBInstanceIdentifier')} has no endpoint")
    return str(endpoint["Address"]), int(endpoint.get("Port") or 5432)


def drill_instance_name(identifier: str, moment: datetime) -> str:
    return derived_identifier(identifier, f"-drill-{moment.astimezone(UTC):%Y%m%d%H%M}")
