"""Background polling of RDS, snapshots, events, maintenance and CloudWatch, each at its own interval, served
from cache.

Each source polls its (account, region) units in threads (boto3 blocks); a unit that fails keeps its last good
data, whose age is exported, and the source backs off with jitter. A scrape only reads `view`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from botocore.exceptions import ClientError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, retry_if_result
from tenacity.wait import wait_exponential, wait_random_exponential

from exporter.aws import cloudwatch, lifecycle, limits, snapshots
from exporter.aws.clients import ApiStats, ClientFactory
from exporter.aws.config import AWSConfig
from exporter.aws.rds import Instance, Unit, describe_unit, plan_units
from exporter.aws.render import AWSView, Polled, build_view
from exporter.aws.selfmetrics import render_self
from exporter.aws.shard import hashmod, probe_refs
from exporter.exposition import Fragment
from exporter.target import TargetConfig
from pgwarden.retry import error_of

log = logging.getLogger("pgwarden.aws")

Source = Literal["rds", "snapshots", "events", "maintenance", "cloudwatch", "instance_types", "quotas"]
SOURCES: tuple[Source, ...] = (
    "rds",
    "snapshots",
    "events",
    "maintenance",
    "cloudwatch",
    "instance_types",
    "quotas",
)


class AWSPoller:
    """Owns the AWS clients, the cached data per source and unit, and the background tasks."""

    def __init__(
        self,
        aws: AWSConfig,
        targets: Sequence[TargetConfig],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.aws = aws
        self.sleep = sleep  # between two polls of a source
        self.stats = ApiStats()
        self.clients = ClientFactory(aws, self.stats)
        self.plans = plan_units(aws, targets)
        self.clock = clock
        self.started = clock()
        self.instances: dict[Unit, list[Instance]] = {}
        self.snapshot_lists: dict[Unit, list[snapshots.Snap]] = {}
        self.metrics = cloudwatch.resolve(aws.cloudwatch)
        self.datapoints: dict[Unit, cloudwatch.Datapoints] = {}
        self.requested: dict[Unit, dict[cloudwatch.Key, float]] = {}  # when each pair was last asked for
        self.maintenance: dict[Unit, lifecycle.MaintenanceFacts] = {}
        self.events: dict[Unit, lifecycle.EventCounts] = {}
        self.classes: dict[Unit, dict[str, limits.InstanceClass]] = {}
        self.quotas: dict[Unit, limits.Quotas] = {}
        self.fetched: dict[Source, dict[Unit, float]] = {s: {} for s in SOURCES}
        self.failures: dict[Source, int] = dict.fromkeys(SOURCES, 0)
        self.view = AWSView()
        self.polled = {s: asyncio.Event() for s in SOURCES}  # set once each source's first poll is done
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        log.info("aws polling started", extra={"units": len(self.plans), "shard": str(self.aws.shard or "-")})
        self._tasks = [asyncio.create_task(self._run(s), name=f"aws-{s}") for s in SOURCES]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, source: Source) -> None:
        if source != "rds":
            await self.polled["rds"].wait()  # the others poll what the RDS poll found
        forever = AsyncRetrying(  # every poll is followed by the next: at the interval, or backing off
            sleep=self.sleep,
            retry=retry_if_result(lambda _: True) | retry_if_exception_type(Exception),
            wait=lambda _: self.next_delay(source),
            after=lambda state: self._crashed(source, state),
        )
        await forever(self.poll, source)

    def _crashed(self, source: Source, state: RetryCallState) -> None:
        """A poll that raised: a bug must not end the loop, it counts as a failed poll."""
        if (error := error_of(state)) is not None:
            self.failures[source] += 1
            log.error("aws poll crashed", extra={"source": source, "error": _describe(error)})

    def next_delay(self, source: Source) -> float:
        """The interval; after n failed polls in a row, interval x 2^(n-1) capped at retries.backoff_max (or the
        interval if longer), with equal jitter (half fixed, half random): the first retry comes within one
        interval, then they spread out."""
        interval: float = getattr(self.aws, source).interval
        if not self.failures[source]:
            return interval
        half = {"multiplier": interval / 2, "max": max(self.aws.retries.backoff_max, interval) / 2}
        backoff = wait_exponential(**half) + wait_random_exponential(**half)
        after = RetryCallState(AsyncRetrying(), None, (), {})
        after.attempt_number = self.failures[source]
        return backoff(after)

    # -- one poll of one source --------------------------------------------------------------------------------
    async def poll(self, source: Source) -> bool:
        """Poll every unit of `source` once, concurrently in threads; True when all succeeded.

        Threads only fetch; the cache is written here, on the event loop, so a scrape never sees it change
        half-way."""
        units = self.units(source)
        now = self.clock()
        results = await asyncio.gather(*(asyncio.to_thread(self._fetch_unit, source, u, now) for u in units))
        ok = True
        for unit, (done, data) in zip(units, results, strict=True):
            if not done:
                ok = False
                continue
            self.fetched[source][unit] = now
            self._store(source, unit, data, now)
        self.failures[source] = 0 if ok else self.failures[source] + 1
        self.view = self._build_view()
        self.polled[source].set()
        return ok

    def _store(self, source: Source, unit: Unit, data: Any, now: float) -> None:
        if source == "rds":
            self.instances[unit] = data
        elif source == "snapshots":
            self.snapshot_lists[unit] = data
        elif source == "maintenance":
            self.maintenance[unit] = data
        elif source == "instance_types":
            self.classes[unit] = data
        elif source == "quotas":
            self.quotas[unit] = data
        elif source == "events":
            self._event_counts(unit).add(data, now)
        else:
            pairs, found = data
            requested = self.requested.setdefault(unit, {})
            requested.update(((i.key, m.name), now) for i, m in pairs)
            mine = [i for i in self.served_instances() if i.unit == unit]
            keep = {(i.key, m.name) for i, m in cloudwatch.polled(mine, self.metrics)}
            self.datapoints[unit] = cloudwatch.merge(self.datapoints.get(unit, {}), pairs, found, keep)

    def _event_counts(self, unit: Unit) -> lifecycle.EventCounts:
        """Counting starts at the exporter's start: what happened before is not counted."""
        return self.events.setdefault(unit, lifecycle.EventCounts(start=self.started))

    def units(self, source: Source) -> list[Unit]:
        if source == "rds":
            return sorted(self.plans)
        instances = self.served_instances()
        if source == "snapshots":
            return sorted(snapshots.snapshot_units(instances))
        return sorted({i.unit for i in instances})

    def _fetch_unit(self, source: Source, unit: Unit, now: float) -> tuple[bool, Any]:
        """One unit's data, in a worker thread (which only reads the cache); (False, None) when it failed."""
        try:
            if source == "rds":
                return True, describe_unit(self.clients.rds(*unit), unit, self.plans[unit], self.aws)
            if source == "snapshots":
                return True, snapshots.list_snapshots(self.clients.rds(*unit))
            mine = [i for i in self.served_instances() if i.unit == unit]
            if source == "maintenance":
                return True, lifecycle.fetch_maintenance(self.clients.rds(*unit), mine)
            if source == "instance_types":
                return True, limits.describe_classes(
                    self.clients.ec2(*unit), (i.instance_class for i in mine)
                )
            if source == "quotas":
                return True, limits.fetch_quotas(self.clients.service_quotas(*unit))
            if source == "events":
                counts = self.events.get(unit) or lifecycle.EventCounts(start=self.started)
                start, end = counts.next_window(now)
                return True, lifecycle.list_events(self.clients.rds(*unit), start, end)
            cw = self.aws.cloudwatch
            pairs = cloudwatch.due(mine, self.metrics, self.requested.get(unit, {}), now, cw.interval)
            found = cloudwatch.fetch(self.clients.cloudwatch(*unit), pairs, cw, now) if pairs else {}
            return True, (pairs, found)
        except Exception as exc:  # a failing unit keeps its last good data
            log.warning(
                "aws poll failed",
                extra={
                    "source": source,
                    "account": unit[0] or "default",
                    "region": unit[1],
                    "error": _describe(exc),
                },
            )
            return False, None

    # -- what a scrape reads ------------------------------------------------------------------------------------
    def all_instances(self) -> list[Instance]:
        """Every instance known, once (a role for the exporter's own account would list it twice)."""
        seen: dict[tuple[str, str, str], Instance] = {}
        for unit in sorted(self.instances):
            for inst in self.instances[unit]:
                seen.setdefault(inst.key, inst)
        return list(seen.values())

    def served_instances(self) -> list[Instance]:
        """The instances this replica polls and serves: all, or its shard's (aws.shard)."""
        known = self.all_instances()
        shard = self.aws.shard
        if shard is None:
            return known
        refs = probe_refs(known)
        return [
            i
            for i in known
            if any(hashmod(r, shard.total) == shard.index for r in i.targets or (refs[i.key],))
        ]

    def _build_view(self) -> AWSView:
        instances = self.served_instances()
        points: cloudwatch.Datapoints = {}
        for unit_points in self.datapoints.values():
            points.update(unit_points)
        polled = Polled(
            points=points,
            metrics=self.metrics,
            facts=snapshots.summarize(instances, self.snapshot_lists),
            maintenance=self.maintenance,
            events=self.events,
            classes=self.classes,
            quotas=self.quotas,
            now=self.clock(),
        )
        return build_view(instances, polled, self.all_instances())

    def ages(self) -> dict[str, float]:
        """Per source, the age of the oldest data served (a unit never fetched counts from start-up)."""
        now = self.clock()
        ages: dict[str, float] = {}
        for source in SOURCES:
            fetched = self.fetched[source]
            units = self.units(source)
            if units:
                ages[source] = max(now - fetched.get(u, self.started) for u in units)
        return ages

    def self_metrics(self) -> list[Fragment]:
        """The pollers' own series, and the account-wide ones (instance classes, quotas)."""
        return [*render_self(self.stats, self.ages()), *self.view.account_wide]


def _describe(exc: BaseException) -> str:
    """Error type and AWS error code: never the message, which may quote request details."""
    if isinstance(exc, ClientError):
        return f"ClientError: {exc.response.get('Error', {}).get('Code', '?')}"
    return type(exc).__name__
