"""`pgwarden-responder migrate run`: a migration tool's command, guarded. One journal row (trigger: operator,
action `migrate`) per run, every attempt in its plan and result:

1. pre-flight (`preflight`): refused (exit 2) with the reasons;
2. the snapshot of a target with `rds:` (`snapshot`), unless `--no-snapshot` (journaled);
3. the command, through the gate, with `PGOPTIONS` (lock and statement timeouts) and
   `PGAPPNAME=pgwarden-migrate:<id>`, the lock watchdog (`watchdog`) watching its backends; a failed attempt is
   retried after a backoff (tenacity), up to `retries.attempts`;
4. after (`after`): invalid indexes it left dropped, touched tables ANALYZEd.
With `--lint PATH...`, the migration's files are linted against the target (`lint`) right after the pre-flight:
an error refuses the run (exit 2) before anything runs. `--dry-run` runs the pre-flight and the lint for real,
then prints and journals the plan without running anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
import tenacity

from pgwarden import postgres
from pgwarden.redact import redact
from responder.aws import AwsConfig, RdsApi
from responder.clock import iso
from responder.config import Config
from responder.config.resolve import Server
from responder.decision import Decision, OperatorTrigger
from responder.effects import ApiCall, Authority, EffectGate
from responder.journal import Journal
from responder.migrate import preflight, snapshot
from responder.migrate.after import Catalogue, clean_up, drop_invalid
from responder.migrate.findings import has_errors, render
from responder.migrate.lint import lint as lint_files
from responder.migrate.live import Settings
from responder.migrate.settings import MigrationsSchema
from responder.migrate.squawk import SquawkError
from responder.migrate.watchdog import Watchdog
from responder.outcomes import Outcome, State
from responder.targets import PostgresTarget

ACTION = preflight.ACTION
APP_PREFIX = "pgwarden-migrate:"
ATTEMPT_LIMIT = 4  # an attempt is killed after this many statement_timeouts


class FilesChanged(Exception):
    """A file `--lint` passed changed before an attempt: what would run is not what was linted."""


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class Request:
    target: str
    argv: tuple[str, ...]
    snapshot: bool | None  # None: migrations.snapshot.default
    dry_run: bool
    lint: tuple[Path, ...] = ()  # the migration's SQL files, linted against the target before it runs


def environment(settings: MigrationsSchema, action_id: int, base: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: `base` with the migration's session settings (libpq reads PGOPTIONS and
    PGAPPNAME for every connection it opens; PGOPTIONS already set is kept, ours last so they win)."""
    ours = (
        f"-c lock_timeout={postgres.milliseconds(settings.lock_timeout)}"
        f" -c statement_timeout={postgres.milliseconds(settings.statement_timeout)}"
    )
    options = f"{base['PGOPTIONS']} {ours}" if base.get("PGOPTIONS") else ours
    return {**base, "PGOPTIONS": options, "PGAPPNAME": f"{APP_PREFIX}{action_id}"}


class Migration:
    """One `migrate run`, journaled as `action_id`."""

    def __init__(
        self, config: Config, server: Server, request: Request, journal: Journal, action_id: int, out: TextIO
    ) -> None:
        self.config, self.server, self.request, self.out = config, server, request, out
        self.settings = config.schema.migrations
        self.journal, self.action_id = journal, action_id
        # the catalogue before the first attempt (`execute` reads it); the files `--lint` passed, as linted
        self.before = Catalogue({}, frozenset())
        self.linted: dict[Path, str | None] = {}
        rds = server.rds
        mode = "dry-run" if request.dry_run else "enforce"
        authority = Authority(
            action_id, ACTION, mode, rds.identifier if rds else None, rds.region if rds else None
        )
        self.gate = EffectGate(authority, journal)
        self.app = f"{APP_PREFIX}{action_id}"
        self.env = environment(self.settings, action_id, os.environ)
        s = self.settings
        self.plan: dict[str, Any] = {
            "target": server.name,
            "command": [redact(a) for a in request.argv],
            "environment": {k: self.env[k] for k in ("PGOPTIONS", "PGAPPNAME")},
            "watchdog": {"blocked_after": s.watchdog.blocked_after, "application_name": self.app},
            "retries": s.retries.model_dump(),
            "attempts": [],
        }

    def say(self, text: str) -> None:
        print(f"migration {self.action_id}: {text}", file=self.out, flush=True)

    async def save(self) -> None:
        await self.gate.save_plan(self.plan)

    def snapshot_call(self) -> ApiCall | None:
        """The snapshot to take, or None (journaled why) when none is."""
        wanted = self.request.snapshot
        if self.server.rds is None:
            self.plan["snapshot"] = {"skipped": "the target has no rds:"}
            return None
        if not (self.settings.snapshot.default if wanted is None else wanted):
            self.plan["snapshot"] = {"skipped": "--no-snapshot" if wanted is False else "snapshot.default"}
            return None
        call = snapshot.snapshot_call(self.server.rds, self.action_id)
        self.plan["snapshot"] = call.describe()
        return call

    def rds_api(self) -> RdsApi:
        aws, rds = self.config.aws, self.server.rds
        assert rds is not None
        return RdsApi(aws if aws is not None else AwsConfig(rds.region, None, 20.0))

    async def lint(self) -> list[str]:
        """`--lint`'s files against the target, the findings printed and counted in the plan: the refusals (a lint
        error, or lint unable to run), none when it passed or there was nothing to lint."""
        files = self.request.lint
        if not files:
            return []
        self.linted = {f: digest(f) for f in files}  # before lint reads them: a change after is caught
        try:
            findings, notes = await lint_files(files, Settings.of(self.settings), self.server)
        except (SquawkError, OSError, psycopg.Error) as exc:
            return [f"lint could not run: {redact(str(exc))}"]
        errors = sum(f.level == "error" for f in findings)
        self.plan["lint"] = {
            "files": [str(f) for f in files],
            "errors": errors,
            "warnings": len(findings) - errors,
        }
        self.out.write(render(findings, notes, "text"))
        self.say(f"lint: {errors} error(s), {len(findings) - errors} warning(s) in {len(files)} file(s)")
        if has_errors(findings):
            return [f"lint found {errors} error(s) in the migration's files"]
        return []

    async def execute(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """After the pre-flight passed: the snapshot, the attempts and the clean-up; the exit code."""
        call = self.snapshot_call()
        await self.save()
        if self.request.dry_run:
            return await self.dry_run(call)
        if call is not None:
            name = await snapshot.take(self.gate, self.rds_api(), call, self.settings.snapshot.wait_timeout)
            self.plan["snapshot"]["id"] = name
            await self.save()
            self.say(f"snapshot {name} available: the rollback point")
        self.before = await Catalogue.read(conn)
        since = (await (await conn.execute("SELECT clock_timestamp()")).fetchone() or [None])[0]
        try:
            code = await self.attempts(conn, since)
        except FilesChanged:
            self.plan["after"] = await clean_up(self.gate, conn, self.before)
            raise
        self.plan["after"] = await clean_up(self.gate, conn, self.before)
        await self.save()
        return code

    async def dry_run(self, call: ApiCall | None) -> int:
        """The plan, printed and journaled (each effect as `dry-run`): nothing is run, signalled or taken."""
        if call is not None:
            await self.gate.aws(self.rds_api(), call)
        await self.gate.hook(f"{ACTION} attempt 1", self.request.argv, self.env, self.attempt_limit)
        self.say("dry run: the plan (nothing was run)")
        print(json.dumps(self.plan, indent=2, sort_keys=True, default=str), file=self.out, flush=True)
        return 0

    @property
    def attempt_limit(self) -> float:
        return self.settings.statement_timeout * ATTEMPT_LIMIT

    async def attempts(self, conn: psycopg.AsyncConnection[Any], since: datetime) -> int:
        retries = self.settings.retries

        def before_sleep(state: tenacity.RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action else 0
            self.say(f"attempt {state.attempt_number} failed; retrying in {wait:g}s")

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(retries.attempts),
            wait=tenacity.wait_exponential(multiplier=retries.backoff, max=retries.max_backoff),
            retry=tenacity.retry_if_result(lambda code: code != 0),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else 1,
            before_sleep=before_sleep,
        )
        code: int = await retrying(self.attempt, conn, since)
        return code

    async def attempt(self, conn: psycopg.AsyncConnection[Any], since: datetime) -> int:
        number = len(self.plan["attempts"]) + 1
        s = self.settings
        if changed := [str(f) for f, was in self.linted.items() if digest(f) != was or was is None]:
            raise FilesChanged(f"not running attempt {number}: changed since the lint: {', '.join(changed)}")
        # what a failed attempt left INVALID, dropped before the retry builds it again
        dropped = await drop_invalid(self.gate, conn, self.before) if number > 1 else []
        watchdog = Watchdog(self.gate, conn, self.app, since, s.watchdog.blocked_after, attempt=number)
        watch = asyncio.create_task(watchdog.watch(min(0.25, s.watchdog.blocked_after / 4)))
        started, error = time.monotonic(), None
        self.say(f"attempt {number}: {shlex.join(redact(a) for a in self.request.argv)}")
        try:
            code = await self.gate.hook(
                f"{ACTION} attempt {number}", self.request.argv, self.env, self.attempt_limit
            )
        except TimeoutError:
            code, error = 1, f"killed after {self.attempt_limit:g}s"
        except OSError as exc:
            code, error = 127, f"{type(exc).__name__}: {exc}"
        finally:
            watchdog.stop()
            await watch
        record: dict[str, Any] = {
            "attempt": number,
            "exit_code": code,
            "seconds": round(time.monotonic() - started, 3),
            "cancels": watchdog.cancels,
        }
        if error:
            record["error"] = error
        if dropped:
            record["invalid_indexes_dropped"] = dropped
        self.plan["attempts"].append(record)
        await self.save()
        cancelled = f", {len(watchdog.cancels)} cancel(s) by the watchdog" if watchdog.cancels else ""
        self.say(f"attempt {number} exited {code}{cancelled}")
        return 0 if code == 0 else (code or 1)


async def open_row(journal: Journal, server: Server, request: Request) -> int:
    """The run's journal row, running at once and owned by this process: its id."""
    command = redact(shlex.join(request.argv))[:500]
    labels = {"target": server.name, "command": command}
    target = PostgresTarget(server.name, server.conninfo, server.display, credentials=server.credentials)
    mode = "dry-run" if request.dry_run else "enforce"
    trigger = OperatorTrigger(ACTION, server.name, iso(datetime.now(UTC)) or "", labels)
    (started,) = await journal.record([Decision(trigger, State.RUNNING, ACTION, ACTION, mode, target)])
    return started.action_id


async def run(config: Config, server: Server, request: Request, journal: Journal, out: TextIO) -> int:
    """The whole run on an open journal: its exit code (0 done, 1 failed, 2 refused before anything ran)."""
    action_id = await open_row(journal, server, request)
    migration = Migration(config, server, request, journal, action_id, out)
    migration.say(f"target {server.name} ({server.display}), {'dry run' if request.dry_run else 'enforce'}")
    await migration.save()
    options = postgres.SessionOptions(f"pgwarden-migrate-guard:{action_id}", server.connect_timeout)
    try:
        conn = await postgres.connect(server.conninfo, options, server.credentials)
    except psycopg.Error as exc:
        unreachable = f"cannot connect to {server.display}: {redact(str(exc))}"
        migration.say(f"refused: {unreachable}")
        await journal.finish(action_id, Outcome.GUARDRAIL, {"refused": [unreachable]}, unreachable)
        return 2
    try:
        why = await preflight.check(conn, journal, server.name, action_id, migration.settings.preflight)
        why = why or await migration.lint()
        if why:
            for reason in why:
                migration.say(f"refused: {reason}")
            refused = {
                "refused": why,
                **({"lint": migration.plan["lint"]} if "lint" in migration.plan else {}),
            }
            await journal.finish(action_id, Outcome.GUARDRAIL, refused, "; ".join(why)[:2000])
            return 2
        try:
            code = await migration.execute(conn)
        except asyncio.CancelledError:  # SIGTERM or Ctrl-C: the command was killed (see EffectGate.hook)
            error = "stopped by a signal while running: the database is as the command left it"
            migration.say(f"interrupted: {error}")
            await asyncio.shield(journal.finish(action_id, Outcome.INTERRUPTED, migration.plan, error))
            return 1
        except Exception as exc:
            error = f"{type(exc).__name__}: {redact(str(exc))}"
            migration.say(f"failed: {error}")
            await journal.finish(action_id, Outcome.FAILED, migration.plan, error)
            return 1
        snap = (migration.plan.get("snapshot") or {}).get("id")
        rollback = f" (rollback point: snapshot {snap})" if snap else ""
        if request.dry_run:
            await journal.finish(action_id, Outcome.DRY_RUN, migration.plan)
        elif code == 0:
            await journal.finish(action_id, Outcome.SUCCEEDED, migration.plan)
            migration.say(f"succeeded{rollback}")
        else:
            attempts = len(migration.plan["attempts"])
            error = f"the command failed (exit {code}) after {attempts} attempt(s)"
            await journal.finish(action_id, Outcome.FAILED, migration.plan, error)
            migration.say(f"failed: {error}{rollback}")
        return 0 if code == 0 else 1
    finally:
        await conn.close()
