"""Backups from DescribeDBSnapshots: latest and count per type, and the latest copy in each backup region."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exporter.aws.rds import Instance, Unit

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient


@dataclass(frozen=True, slots=True)
class Snap:
    """The fields of one snapshot the exporter uses."""

    instance: str
    type: str
    status: str
    created: float | None
    original_created: float | None  # a copy keeps its source's time here
    source_arn: str  # SourceDBSnapshotIdentifier of a copy (an ARN across regions)
    source_region: str
    dbi_resource_id: str


@dataclass
class SnapshotFacts:
    latest: dict[str, float] = field(default_factory=dict)  # snapshot type -> newest create time
    counts: dict[str, int] = field(default_factory=dict)
    cross_region: dict[str, float] = field(default_factory=dict)  # backup region -> newest copy's time


def snapshot_units(instances: Iterable[Instance]) -> set[Unit]:
    """Every (account, region) to list: the instances' own regions and their backup regions."""
    units: set[Unit] = set()
    for i in instances:
        units.add(i.unit)
        units.update((i.unit[0], region) for region in i.backup_regions)
    return units


def list_snapshots(client: RDSClient) -> list[Snap]:
    """Every automated and manual snapshot of the region, 100 a page."""
    params: dict[str, Any] = {"MaxRecords": 100}
    snaps: list[Snap] = []
    while True:
        page = client.describe_db_snapshots(**params)
        for raw in page.get("DBSnapshots", []):
            created = raw.get("SnapshotCreateTime")
            original = raw.get("OriginalSnapshotCreateTime")
            snaps.append(
                Snap(
                    instance=raw.get("DBInstanceIdentifier", ""),
                    type=raw.get("SnapshotType", ""),
                    status=raw.get("Status", ""),
                    created=created.timestamp() if created else None,
                    original_created=original.timestamp() if original else None,
                    source_arn=raw.get("SourceDBSnapshotIdentifier", ""),
                    source_region=raw.get("SourceRegion", ""),
                    dbi_resource_id=raw.get("DbiResourceId", ""),
                )
            )
        if not page.get("Marker"):
            return snaps
        params["Marker"] = page["Marker"]


def summarize(
    instances: Sequence[Instance], listings: Mapping[Unit, Sequence[Snap]]
) -> dict[tuple[str, str, str], SnapshotFacts]:
    """Facts per instance from the regions' listings; a region never listed yet contributes nothing."""
    facts: dict[tuple[str, str, str], SnapshotFacts] = {}
    for inst in instances:
        own = listings.get(inst.unit)
        if own is None:
            continue
        f = facts[inst.key] = SnapshotFacts()
        mine = [
            s for s in own if s.instance == inst.identifier and _same_instance(s, inst) and _local(s, inst)
        ]
        origins = {s.created for s in mine if s.created is not None}
        for s in mine:
            if s.status != "available" or s.created is None:
                continue
            f.counts[s.type] = f.counts.get(s.type, 0) + 1
            f.latest[s.type] = max(f.latest.get(s.type, 0.0), s.created)
        for region in inst.backup_regions:
            copies = [s for s in listings.get((inst.unit[0], region), ()) if is_copy_of(s, inst, origins)]
            times = [s.original_created or s.created for s in copies if s.status == "available"]
            valid = [t for t in times if t is not None]
            if valid:
                f.cross_region[region] = max(valid)
    return facts


def is_copy_of(snap: Snap, inst: Instance, origins: set[float]) -> bool:
    """A snapshot in another region is a copy of `inst`'s when its source ARN (or SourceRegion) names
    the instance's region and account, or, where the API leaves those out, when its original create time is
    the time of one of the instance's own snapshots. The name alone proves nothing: an instance of the same
    name may live in the backup region."""
    if snap.instance != inst.identifier or not _same_instance(snap, inst):
        return False
    if snap.source_arn.startswith("arn:"):
        parts = snap.source_arn.split(":")
        return len(parts) > 4 and parts[3] == inst.region and parts[4] == inst.account_id
    if snap.source_region:
        return snap.source_region == inst.region
    return snap.original_created is not None and snap.original_created in origins


def _local(snap: Snap, inst: Instance) -> bool:
    """Not a copy brought in from another region (those belong to that region's instance)."""
    if snap.source_arn.startswith("arn:"):
        return snap.source_arn.split(":")[3] == inst.region
    return not snap.source_region or snap.source_region == inst.region


def _same_instance(snap: Snap, inst: Instance) -> bool:
    return not (snap.dbi_resource_id and inst.dbi_resource_id) or snap.dbi_resource_id == inst.dbi_resource_id
