"""`migrate run`'s pre-migration snapshot of a target with `rds:`: `CreateDBSnapshot`
`pre-migration-<yyyymmddhhmmss>-<journal id>`, tagged with the journal row, through the gate, then waited for
`available`. Its id is the rollback point (`recover`, the runbook's rollback)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from responder.aws import RdsApi
from responder.effects import MIGRATION_TAG, ApiCall, EffectGate
from responder.targets import RdsTarget

POLL = 5.0  # seconds between DescribeDBSnapshots while waiting


def snapshot_call(rds: RdsTarget, action_id: int, now: datetime | None = None) -> ApiCall:
    """The CreateDBSnapshot call for the migration journaled as `action_id`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    params = {
        "DBInstanceIdentifier": rds.identifier,
        "DBSnapshotIdentifier": f"pre-migration-{stamp}-{action_id}",
        "Tags": [{"Key": MIGRATION_TAG, "Value": str(action_id)}],
    }
    return ApiCall("CreateDBSnapshot", rds.region, params)


async def take(gate: EffectGate, api: RdsApi, call: ApiCall, wait_timeout: float) -> str:
    """Take the snapshot and wait until it is available (TimeoutError after `wait_timeout`): its id."""
    name = str(call.params["DBSnapshotIdentifier"])
    await gate.aws(api, call)
    if gate.dry_run:
        return name
    client = api.client(call.region)
    started = time.monotonic()
    while True:
        found = await api.call(lambda: client.describe_db_snapshots(DBSnapshotIdentifier=name))
        status = next((s.get("Status") for s in found.get("DBSnapshots", [])), None)
        if status == "available":
            break
        if (
            status in ("failed", "deleted", "incompatible-restore")
            or time.monotonic() - started > wait_timeout
        ):
            raise TimeoutError(f"snapshot {name} is {status} after {time.monotonic() - started:.0f}s")
        await asyncio.sleep(POLL)
    return name
