"""The one gate for every change pgwarden makes outside its own process.

AWS calls that are not reads (restore, delete, rename, modify, tags, secrets), `pg_cancel_backend` and
`pg_terminate_backend`, VACUUM and ANALYZE, and operators' hook commands all go through an `EffectGate`. A gate
is made for one journaled decision (its id, action, mode and target) and, for each effect:

- in dry-run records the exact call (secrets redacted) in the decision's plan under `effects` and performs none;
- refuses, with outcome `guardrail`, to delete, rename or modify an RDS instance the decision does not own;
- journals the effect before it is made (`started`) and after (`done` or `failed`), so a crash in between is
  visible in the decision's plan and a resumed run can tell what may already have happened (`failed` with
  `refused`: AWS refused it outright, so it did not).

A second line of defence sits in every boto3 client the responder makes (`guard_client`): a mutating operation
that did not come through a gate raises `responder.aws.UngatedEffect` before it is sent.

Ownership of an instance to delete (or rename, other than the recovery's own two renames): its name has the shape
this decision gives (`<id>-drill-<stamp>` for `restore_drill`, `<id>-recovery-<date>` for `recover`), it carries
the matching `pgwarden:drill` / `pgwarden:recovery` tag naming this decision's journal row, and this row
journaled the restore that created it, in enforce mode, in that region, and AWS did not refuse that restore. A
tag alone is never enough.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from botocore import xform_name
from botocore.exceptions import ClientError

from pgwarden.redact import redact, redact_data
from responder.aws import RdsApi, is_read, passing
from responder.clock import iso
from responder.journal import ActionRow, Journal

log = logging.getLogger("responder.effects")

T = TypeVar("T")

DRILL_TAG = "pgwarden:drill"
EXPIRES_TAG = "pgwarden:expires"
RECOVERY_TAG = "pgwarden:recovery"
OWNED_NAME = {
    "restore_drill": (re.compile(r"^.+-drill-\d{12}$"), DRILL_TAG),
    "recover": (re.compile(r"^.+-recovery-\d{8}$"), RECOVERY_TAG),
}
RESTORES = ("RestoreDBInstanceFromDBSnapshot", "RestoreDBInstanceToPointInTime")
MIGRATION_TAG = "pgwarden:migration"
MIGRATION_SNAPSHOT = re.compile(r"^pre-migration-\d{14}-(\d+)$")  # `migrate run`'s, its journal id last


class EffectRefused(Exception):
    """The gate refuses the effect; the decision ends with outcome `guardrail` and this reason."""


# ---- what an effect is -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """One AWS call as it will be made (RDS unless `service` says otherwise): what dry-runs print and journal."""

    operation: str
    region: str
    params: dict[str, Any] = field(default_factory=dict)
    service: str = "rds"

    def describe(self) -> dict[str, Any]:
        shown = {
            "operation": self.operation,
            "region": self.region,
            "params": redact_data(jsonable(self.params)),
        }
        if self.service != "rds":
            shown["service"] = self.service
        return shown


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Authority:
    """The journaled decision effects are made for: as journaled, never as the current config says."""

    action_id: int
    action: str
    mode: str  # "enforce" | "dry-run"
    instance: str | None = None  # the RDS instance the decision targets, when it targets one
    region: str | None = None
    secrets: frozenset[str] = frozenset()  # Secrets Manager secrets it may write (the recovery's)
    renames: frozenset[tuple[str, str]] = frozenset()  # (from, to) renames of its target it may make

    @property
    def dry_run(self) -> bool:
        return self.mode != "enforce"


class EffectGate:
    """Every effect of one decision, journaled in its row of `journal`; see the module's docstring. `plan` is the
    row's plan so far (its `effects` included), for a decision resumed or acted on again."""

    def __init__(self, authority: Authority, journal: Journal, plan: Mapping[str, Any] | None = None) -> None:
        self.authority = authority
        self.journal = journal
        self.plan: dict[str, Any] = dict(plan or {})
        self.effects: list[dict[str, Any]] = list(self.plan.pop("effects", None) or [])

    @property
    def dry_run(self) -> bool:
        return self.authority.dry_run

    async def save_plan(self, plan: Mapping[str, Any]) -> None:
        """Journal the decision's plan (what is about to be done), keeping the effects journaled so far."""
        self.plan = {k: v for k, v in plan.items() if k != "effects"}
        await self._save()

    async def _save(self) -> None:
        plan = {**self.plan, "effects": self.effects} if self.effects else self.plan
        await self.journal.set_plan(self.authority.action_id, plan)

    async def _journal(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["at"] = round(time.time(), 3)
        self.effects.append(entry)
        await self._save()
        return entry

    async def _made(self, entry: dict[str, Any], state: str, **detail: Any) -> None:
        entry.update(state=state, finished_at=round(time.time(), 3), **detail)
        await self._save()

    async def _perform(self, call: dict[str, Any], perform: Callable[[], Awaitable[T]]) -> T | None:
        if self.dry_run:
            await self._journal({**call, "state": "dry-run"})
            return None
        entry = await self._journal({**call, "state": "started"})
        try:
            value = await perform()
        except BaseException as exc:
            # Cancelled or timed out mid-call: the effect may or may not have been made; say so. Unless AWS
            # refused it outright (`refused`): then it certainly was not.
            error = f"{type(exc).__name__}: {exc}"[:500]
            refused = {"refused": True} if refused_unmade(exc) else {}
            await asyncio.shield(self._made(entry, "failed", error=error, **refused))
            raise
        await self._made(entry, "done")
        return value

    # ---- AWS ----------------------------------------------------------------------------------------------

    async def aws(self, rds: RdsApi, api: ApiCall, client: Any = None) -> dict[str, Any] | None:
        """Make a mutating AWS call (None in dry-run); EffectRefused unless this decision may make it."""
        if is_read(api.operation):
            raise ValueError(f"{api.operation} is a read: call it directly")
        await self._check_aws(rds, api)
        client = client if client is not None else rds.client(api.region)
        method = getattr(client, xform_name(api.operation))

        def send() -> dict[str, Any]:
            with passing(api.operation):
                return dict(method(**api.params))

        return await self._perform({"kind": "aws", **api.describe()}, lambda: rds.call(send))

    async def _check_aws(self, rds: RdsApi, api: ApiCall) -> None:
        op, params, auth = api.operation, api.params, self.authority
        if op in RESTORES:
            new = str(params.get("TargetDBInstanceIdentifier") or params.get("DBInstanceIdentifier"))
            self._require_owned_shape(new)
            tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
            _, tag = OWNED_NAME[auth.action]
            if tags.get(tag) != str(auth.action_id):
                raise EffectRefused(f"{op} of {new} must carry the tag {tag}={auth.action_id}")
            return
        if op == "DeleteDBInstance":
            await self.require_owned(rds, str(params["DBInstanceIdentifier"]), api.region)
            return
        if op == "ModifyDBInstance":
            ident, renamed = str(params["DBInstanceIdentifier"]), params.get("NewDBInstanceIdentifier")
            if renamed is not None:
                if (ident, str(renamed)) in auth.renames and api.region == auth.region:
                    return
                await self.require_owned(rds, ident, api.region)
                if str(renamed) != auth.instance:
                    raise EffectRefused(f"renaming {ident} to {renamed} is not this decision's to make")
                return
            if ident == auth.instance and api.region == auth.region:
                return
            await self.require_owned(rds, ident, api.region)
            return
        if op == "CreateDBSnapshot":
            self._check_migration_snapshot(api)
            return
        if op in ("PutSecretValue", "UpdateSecret") and api.service == "secretsmanager":
            if str(params.get("SecretId")) in auth.secrets:
                return
            raise EffectRefused(f"secret {params.get('SecretId')} is not this decision's to write")
        raise EffectRefused(f"{op} is not an effect pgwarden makes")

    def _check_migration_snapshot(self, api: ApiCall) -> None:
        """A `migrate` decision snapshots its own target, named and tagged after its journal row; nothing else
        takes snapshots."""
        auth, params = self.authority, api.params
        name = str(params.get("DBSnapshotIdentifier"))
        shape = MIGRATION_SNAPSHOT.match(name)
        if auth.action != "migrate" or shape is None or shape.group(1) != str(auth.action_id):
            raise EffectRefused(f"snapshot {name} is not one this decision takes")
        if params.get("DBInstanceIdentifier") != auth.instance or api.region != auth.region:
            raise EffectRefused(f"snapshot {name}: {params.get('DBInstanceIdentifier')} is not this target")
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        if tags.get(MIGRATION_TAG) != str(auth.action_id):
            raise EffectRefused(f"snapshot {name} must carry the tag {MIGRATION_TAG}={auth.action_id}")

    def _require_owned_shape(self, identifier: str) -> None:
        shape = OWNED_NAME.get(self.authority.action)
        if shape is None or not shape[0].match(identifier):
            raise EffectRefused(f"{identifier} is not an instance a {self.authority.action} decision creates")

    async def require_owned(self, rds: RdsApi, identifier: str, region: str) -> dict[str, Any]:
        """The instance, if this decision owns it (see the module docstring); EffectRefused otherwise."""
        auth = self.authority
        self._require_owned_shape(identifier)
        row = await self.journal.get(auth.action_id)
        if row is None or row.action != auth.action:
            raise EffectRefused(f"{identifier}: journal row {auth.action_id} is not a {auth.action}")
        if not requested_restore(row, identifier, region):
            raise EffectRefused(
                f"{identifier}: journal row {auth.action_id} never requested its restore in {region}"
            )
        try:
            instance = await rds.describe_instance(identifier, region)
        except LookupError as exc:
            raise EffectRefused(f"{identifier} not found in {region}") from exc
        _, tag = OWNED_NAME[auth.action]
        tags = {str(t["Key"]): str(t["Value"]) for t in instance.get("TagList") or []}
        if tags.get(tag) != str(auth.action_id):
            raise EffectRefused(f"{identifier} is not tagged {tag}={auth.action_id}: not this decision's")
        return instance

    # ---- PostgreSQL and hooks ---------------------------------------------------------------------------------

    async def postgres(
        self, statement: str, params: Mapping[str, Any], perform: Callable[[], Awaitable[T]]
    ) -> T | None:
        """A statement that changes a server (a signal, VACUUM, ANALYZE); None in dry-run."""
        call = {"kind": "postgres", "statement": statement, "params": redact_data(jsonable(dict(params)))}
        return await self._perform(call, perform)

    async def hook(
        self, name: str, argv: tuple[str, ...], env: Mapping[str, str], limit: float
    ) -> int | None:
        """Run an operator's hook command (its exit code; None in dry-run); killed after `limit` seconds
        (TimeoutError)."""

        async def run() -> int:
            proc = await asyncio.create_subprocess_exec(*argv, env=dict(env))
            try:
                async with asyncio.timeout(limit):
                    return await proc.wait()
            except BaseException:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise

        shown = [redact(arg) for arg in argv]  # a migration tool's URL argument may hold a password
        return await self._perform({"kind": "hook", "hook": name, "argv": shown}, run)


async def run_reader(argv: Sequence[str], limit: float) -> tuple[int, bytes, bytes]:
    """Run a program that only reads (squawk, the migration linter): its exit code, stdout and stderr; killed
    after `limit` seconds (TimeoutError). Outside the gate, as it changes nothing; in this module, where every
    process the responder starts is started."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode if proc.returncode is not None else -1, out, err


def refused_unmade(exc: BaseException) -> bool:
    """Whether AWS answered the call's first and only attempt with a 4xx error: it was refused, not made (a
    retried call may have been made by an earlier attempt whose answer was lost)."""
    if not isinstance(exc, ClientError):
        return False
    meta: dict[str, Any] = dict(exc.response.get("ResponseMetadata") or {})
    return 400 <= int(meta.get("HTTPStatusCode") or 0) < 500 and not meta.get("RetryAttempts")


def requested_restore(row: ActionRow, identifier: str, region: str) -> bool:
    """Whether this journal row journaled, in enforce mode, the restore that creates `identifier` in `region`
    (an instance of the same name in another region is another one: another responder's, say)."""
    plan = row.plan
    if row.mode != "enforce" or plan is None:
        return False
    for step in plan.get("steps") or []:  # journaled before the gate existed, with the drill's region
        if (
            isinstance(step, dict)
            and step.get("step") == "restore requested"
            and step.get("instance") == identifier
            and plan.get("region") == region
        ):
            return True
    for effect in plan.get("effects") or []:
        if not isinstance(effect, dict) or effect.get("operation") not in RESTORES:
            continue
        if effect.get("state") not in ("started", "done", "failed") or effect.get("region") != region:
            continue
        if effect.get("refused"):  # e.g. DBInstanceAlreadyExists: the instance of that name is someone else's
            continue
        params = effect.get("params") or {}
        made = params.get("TargetDBInstanceIdentifier") or params.get("DBInstanceIdentifier")
        if made == identifier:
            return True
    return False
