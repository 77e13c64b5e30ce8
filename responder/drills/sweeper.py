"""Delete what a drill left behind. Runs at start-up and on housekeeping ticks (at most every `every` s), so a
responder killed mid-drill leaves nothing running once it is back (with PostgreSQL journals: once another
replica, or its restart, has journaled the drill `interrupted`).

An instance tagged `pgwarden:drill=<id>` is deleted only when all of these hold, and is otherwise kept and
reported (a log line; `pgwarden_drill_instances{state="kept"}`):
- its `pgwarden:expires` tag is a time, and that time has passed, or the drill's journal row is done;
- journal row `<id>` is a `restore_drill` that journaled, in enforce mode, the restore of exactly this name
  (`<id>-drill-<stamp>`) in this region, not refused by AWS, and the instance's tag names that row (checked
  by the effect gate, which deletes);
- the sweeper itself is in enforce mode: with every drill playbook in dry-run, it journals what it would
  delete in the drill's plan and deletes nothing.
A tag alone is never enough; a missing or unparseable expiry means keep.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

from responder.aws import RdsApi
from responder.clock import Clock, system_clock
from responder.drills import engine
from responder.drills.metrics import ACTION, DrillMetrics
from responder.effects import DRILL_TAG, EXPIRES_TAG, Authority, EffectGate, EffectRefused
from responder.journal import ActionRow, Journal
from responder.outcomes import State

log = logging.getLogger("responder.drills")


def _drill_tags(instance: dict[str, Any]) -> tuple[int, float | None] | None:
    """(the drill's journal id, its expiry or None when missing or unparseable); None: not drill-tagged."""
    tags = engine.tags_of(instance)
    try:
        action_id = int(tags[DRILL_TAG])
    except (KeyError, ValueError):
        return None
    try:
        expires = float(tags[EXPIRES_TAG])
    except (KeyError, ValueError):
        return action_id, None
    return action_id, expires if math.isfinite(expires) else None


class DrillSweeper:
    def __init__(
        self,
        rds: RdsApi,
        journal: Journal,
        regions: Iterable[str],
        metrics: DrillMetrics,
        every: float = 60.0,
        *,
        mode: str = "enforce",
        clock: Clock = system_clock,
    ) -> None:
        self.rds = rds
        self.journal = journal
        self.regions = sorted(set(regions))
        self.metrics = metrics
        self.every = every
        self.mode = mode
        self.clock = clock
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

    def _gate(self, row: ActionRow) -> EffectGate:
        """The gate of the drill's own decision: the sweeper acts for that journal row, in its mode."""
        mode = row.mode if self.mode == "enforce" else "dry-run"
        authority = Authority(row.id, ACTION, str(mode))
        return EffectGate(authority, self.journal, row.plan)

    async def sweep(self) -> list[str]:
        """Delete every leaked drill instance this journal owns; the identifiers deleted."""
        self._last = time.monotonic()
        now = self.clock().timestamp()
        deleted: list[str] = []
        kept = running = leaked = 0
        for region in self.regions:
            for instance in await self._instances(region):
                tags = _drill_tags(instance)
                if tags is None or instance.get("DBInstanceStatus") == "deleting":
                    continue
                identifier = str(instance["DBInstanceIdentifier"])
                action_id, expires = tags
                row = await self.journal.get(action_id)
                why_keep = _why_keep(row, expires)
                if why_keep is not None:
                    kept += 1
                    log.warning("drill-tagged instance kept", extra={"instance": identifier, "why": why_keep})
                    continue
                assert row is not None
                finished = row.state is State.DONE
                if not finished and expires is not None and expires > now:
                    running += 1
                    continue
                outcome = await self._delete(row, identifier, region)
                if outcome == "deleted":
                    why = "drill finished" if finished else "expired"
                    log.warning(
                        "drill instance swept",
                        extra={"instance": identifier, "action_id": action_id, "why": why},
                    )
                    deleted.append(identifier)
                elif outcome == "refused":
                    kept += 1
                elif outcome == "dry-run":
                    running += 1
                else:
                    leaked += 1
        self.metrics.instances(running=running, leaked=leaked, kept=kept)
        return deleted

    async def _delete(self, row: ActionRow, identifier: str, region: str) -> str:
        try:
            answer = await engine.delete_owned_instance(self._gate(row), self.rds, identifier, region)
        except EffectRefused as exc:
            log.warning("drill-tagged instance kept", extra={"instance": identifier, "why": str(exc)})
            return "refused"
        except Exception as exc:
            log.error("drill instance not deleted", extra={"instance": identifier, "error": str(exc)})
            return "failed"
        if answer["status"] == "dry-run":
            log.info("dry-run: drill instance would be swept", extra={"instance": identifier})
            return "dry-run"
        return "deleted"


def _why_keep(row: ActionRow | None, expires: float | None) -> str | None:
    """Why an instance tagged as a drill is not this journal's to sweep, or None."""
    if expires is None:
        return "no parseable pgwarden:expires tag"
    if row is None:
        return "its pgwarden:drill tag names no journal row"
    if row.action != ACTION:
        return f"its pgwarden:drill tag names journal row {row.id}, a {row.action} decision"
    return None
