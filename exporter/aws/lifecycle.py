"""What RDS is going to do to an instance, and what it did: pending maintenance, the engine's end of support,
and the instance events (failover, reboot, low storage ...) counted as they happen."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.aws.rds import Instance

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

# The event categories of RDS DB instances (DescribeEventCategories, SourceType db-instance). Each is exported
# from 0 on, so the first event of a category is an increase Prometheus can see.
EVENT_CATEGORIES = (
    "availability",
    "backup",
    "configuration change",
    "creation",
    "deletion",
    "failover",
    "failure",
    "low storage",
    "maintenance",
    "notification",
    "read replica",
    "recovery",
    "restoration",
    "security",
    "security patching",
)
UNCATEGORISED = "other"
EVENT_OVERLAP = 300.0  # each DescribeEvents window starts this long before the last ended: late events count
STANDARD = "open-source-rds-standard-support"
EXTENDED = "open-source-rds-extended-support"


@dataclass(frozen=True, slots=True)
class MaintenanceAction:
    """One pending maintenance action of one resource (DescribePendingMaintenanceActions)."""

    resource_arn: str
    action: str
    description: str
    auto_applied_after: float | None
    forced_apply: float | None


@dataclass(frozen=True, slots=True)
class EngineSupport:
    """When a major engine version leaves RDS standard and extended support (None: AWS gives no date)."""

    standard_end: float | None = None
    extended_end: float | None = None


@dataclass
class MaintenanceFacts:
    """One unit's maintenance poll: the actions by instance ARN, the support dates by (engine, major)."""

    actions: dict[str, list[MaintenanceAction]] = field(default_factory=dict)
    support: dict[tuple[str, str], EngineSupport] = field(default_factory=dict)


def maintenance_mode(actions: Iterable[MaintenanceAction]) -> str:
    """The most pressing of an instance's pending actions, in prometheus-rds-exporter's words: `forced` (a
    forced-apply date is set), `auto-applied` (applied in the next window), `pending` (waits for an opt-in),
    `no` (none)."""
    modes = {
        "forced" if a.forced_apply else "auto-applied" if a.auto_applied_after else "pending" for a in actions
    }
    return next((m for m in ("forced", "auto-applied", "pending") if m in modes), "no")


def fetch_maintenance(client: RDSClient, instances: Sequence[Instance]) -> MaintenanceFacts:
    """Every pending action of the region (one listing), and the support dates of the instances' versions."""
    facts = MaintenanceFacts()
    params: dict[str, Any] = {"MaxRecords": 100}
    while True:
        page = client.describe_pending_maintenance_actions(**params)
        for resource in page.get("PendingMaintenanceActions", []):
            arn = resource.get("ResourceIdentifier", "")
            facts.actions.setdefault(arn, []).extend(
                MaintenanceAction(
                    resource_arn=arn,
                    action=detail.get("Action", ""),
                    description=detail.get("Description", ""),
                    auto_applied_after=_unix(detail.get("AutoAppliedAfterDate")),
                    forced_apply=_unix(detail.get("ForcedApplyDate")),
                )
                for detail in resource.get("PendingMaintenanceActionDetails", [])
            )
        if not page.get("Marker"):
            break
        params["Marker"] = page["Marker"]
    for engine, major in sorted({(i.engine, i.major_version) for i in instances if i.engine}):
        facts.support[(engine, major)] = engine_support(client, engine, major)
    return facts


def engine_support(client: RDSClient, engine: str, major: str) -> EngineSupport:
    """DescribeDBMajorEngineVersions' lifecycle dates of one major version."""
    found = client.describe_db_major_engine_versions(Engine=engine, MajorEngineVersion=major)
    ends: dict[str, float | None] = {}
    for version in found.get("DBMajorEngineVersions", []):
        if version.get("MajorEngineVersion") != major:
            continue
        for lifecycle in version.get("SupportedEngineLifecycles", []):
            ends[lifecycle["LifecycleSupportName"]] = _unix(lifecycle.get("LifecycleSupportEndDate"))
    return EngineSupport(ends.get(STANDARD), ends.get(EXTENDED))


@dataclass(frozen=True, slots=True)
class Event:
    """One DB instance event: the instance, its categories, when, and its message (which tells it apart)."""

    source: str
    categories: tuple[str, ...]
    when: float
    message: str

    @property
    def key(self) -> tuple[str, float, str]:
        return (self.source, self.when, self.message)


def list_events(client: RDSClient, start: float, end: float) -> list[Event]:
    """The region's DB instance events dated in [start, end), 100 a page."""
    params: dict[str, Any] = {
        "SourceType": "db-instance",
        "StartTime": datetime.fromtimestamp(start, UTC),
        "EndTime": datetime.fromtimestamp(end, UTC),
        "MaxRecords": 100,
    }
    events: list[Event] = []
    while True:
        page = client.describe_events(**params)
        for raw in page.get("Events", []):
            when = _unix(raw.get("Date"))
            if when is None or not start <= when < end:  # some endpoints ignore the window
                continue
            categories = tuple(raw.get("EventCategories") or ()) or (UNCATEGORISED,)
            events.append(Event(raw.get("SourceIdentifier", ""), categories, when, raw.get("Message", "")))
        if not page.get("Marker"):
            return events
        params["Marker"] = page["Marker"]


@dataclass
class EventCounts:
    """One unit's events since the exporter started: counts by instance and category, each event once
    although consecutive windows overlap. Written on the event loop only."""

    start: float  # where the next window starts: start-up, then the last window's end less the overlap
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    seen: dict[tuple[str, float, str], float] = field(default_factory=dict)

    def next_window(self, now: float) -> tuple[float, float]:
        return self.start, now

    def add(self, events: Iterable[Event], end: float) -> None:
        for event in events:
            if event.key in self.seen:
                continue
            self.seen[event.key] = event.when
            counter = self.counts.setdefault(event.source, Counter())
            for category in event.categories:
                counter[category] += 1
        self.start = max(self.start, end - EVENT_OVERLAP)
        self.seen = {k: when for k, when in self.seen.items() if when >= self.start}

    def of(self, identifier: str) -> dict[str, int]:
        """Every known category (0 when none happened) and any other category seen, for one instance."""
        counter = self.counts.get(identifier, Counter())
        return {c: counter.get(c, 0) for c in sorted({*EVENT_CATEGORIES, *counter})}


def _unix(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None
