"""Delete what a drill left behind: instances tagged `pgwarden:drill` whose `pgwarden:expires` has passed or
whose drill's journal row is done. Runs at start-up and on housekeeping ticks (at most every `every` s), so a
responder killed mid-drill leaves nothing running once it is back (with PostgreSQL journals: once another
replica, or its restart, has journaled the drill `interrupted`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from responder.aws import RdsApi
from responder.drills import engine
from responder.drills.metrics import ACTION, DrillMetrics
from responder.journal import Journal, Tx
from responder.outcomes import State

log = logging.getLogger("responder.drills")


def op_finished(action_ids: list[int]) -> Callable[[Tx], set[int]]:
    """Which of these drills' journal rows are done (a drill unknown to this journal is left to its expiry)."""

    def run(tx: Tx) -> set[int]:
        done: set[int] = set()
        for action_id in action_ids:
            row = tx.execute(
                "SELECT state FROM pgwarden_actions WHERE id = ? AND action = ?", (action_id, ACTION)
            ).fetchone()
            if row is not None and row[0] == State.DONE:
                done.add(action_id)
        return done

    return run


def _drill_tags(instance: dict[str, Any]) -> tuple[int, float] | None:
    tags = engine.tags_of(instance)
    try:
        return int(tags[engine.DRILL_TAG]), float(tags.get(engine.EXPIRES_TAG, "0"))
    except (KeyError, ValueError):
        return None


class DrillSweeper:
    def __init__(
        self,
        rds: RdsApi,
        journal: Journal,
        regions: Iterable[str],
        metrics: DrillMetrics,
        every: float = 60.0,
    ) -> None:
        self.rds = rds
        self.journal = journal
        self.regions = sorted(set(regions))
        self.metrics = metrics
        self.every = every
        self._last = float("-inf")

    async def maybe_sweep(self) -> None:
        if time.monotonic() - self._last >= self.every:
            await self.sweep()

    async def _instances(self, region: str) -> list[dict[str, Any]]:
        client = self.rds.client(region)

        def fetch() -> list[dict[str, Any]]:
            pages = client.get_paginator("describe_db_instances").paginate()
            return [dict(i) for page in pages for i in page.get("DBInstances", [])]

        return await engine.call(self.rds, fetch)

    async def sweep(self) -> list[str]:
        """Delete every leaked drill instance; the identifiers deleted."""
        self._last = time.monotonic()
        found: list[tuple[str, str, int, float]] = []
        for region in self.regions:
            for instance in await self._instances(region):
                tags = _drill_tags(instance)
                if tags is not None and instance.get("DBInstanceStatus") != "deleting":
                    found.append((region, str(instance["DBInstanceIdentifier"]), *tags))
        finished = await self.journal.store.run(op_finished([action_id for *_, action_id, _ in found]))
        now = time.time()
        deleted: list[str] = []
        leaked = 0
        for region, identifier, action_id, expires in found:
            if action_id not in finished and expires > now:
                continue
            try:
                await engine.delete_drill_instance(self.rds, identifier, region, action_id=action_id)
            except Exception as exc:
                leaked += 1
                log.error("drill instance not deleted", extra={"instance": identifier, "error": str(exc)})
                continue
            why = "expired" if expires <= now else "drill finished"
            log.warning(
                "drill instance swept", extra={"instance": identifier, "action_id": action_id, "why": why}
            )
            deleted.append(identifier)
        self.metrics.instances(running=len(found) - len(deleted) - leaked, leaked=leaked)
        return deleted
