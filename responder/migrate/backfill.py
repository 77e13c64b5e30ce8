"""`pgwarden-responder migrate backfill`: the runbook's "backfill in batches", resumable, exactly once.

    migrate backfill --config responder.yml --target NAME --table SCHEMA.TABLE --set "COL = EXPR"
                     [--where COND] [--batch-size N] [--resume ID] [--dry-run]

The table is walked by its primary key, `batch_size` keys a batch, one short transaction each (see
`responder.migrate.batches`: the batch's progress commits with it, on the target), pausing for lagging
replicas and for sessions blocked behind a batch (`responder.migrate.walk`). Each batch's UPDATE goes through
the effect gate (in dry-run it is journaled, not run, and the rows it would change are counted).
Progress (rows done/total, rate, ETA) is printed and journaled after each batch in the row (action `backfill`,
trigger operator); `--resume ID` continues it after a crash from its last committed batch.

Exit codes: 0 done, 1 failed (the batches committed so far stay; `--resume` goes on), 2 refused before any batch.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pgwarden.cli import print_config_errors
from pgwarden.logs import setup_logging
from responder.clock import iso
from responder.config import Config, ConfigError, load_config
from responder.core import PostgresTarget
from responder.decision import Decision, OperatorTrigger
from responder.effects import Authority, EffectGate
from responder.journal import ActionRow, Journal
from responder.migrate.batches import BackfillRefused
from responder.migrate.settings import MigrationsSchema
from responder.migrate.sqltext import (
    SqlRefused,
    parse_assignment,
    parse_condition,
    parse_table,
)
from responder.migrate.walk import Stop, Walk
from responder.operator import failed, operator_journal
from responder.outcomes import Outcome, State
from responder.playbooks import default_registry

ACTION = "backfill"
BUSY = "busy"


def add_backfill_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `backfill` on the `migrate` subparsers; `func` returns the exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backfill", help="update a table in batches by primary key, resumable (--resume ID)"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    parser.add_argument("--target", help="the target's name (targets: in the configuration)")
    parser.add_argument("--table", help="SCHEMA.TABLE, quoted as SQL quotes names")
    parser.add_argument("--set", dest="assignment", help='"COLUMN = EXPRESSION": one column, one expression')
    parser.add_argument("--where", help="one condition: only the rows it selects are updated")
    parser.add_argument(
        "--batch-size", type=int, help="keys per batch (default: migrations.backfill.batch_size)"
    )
    parser.add_argument("--resume", type=int, metavar="ID", help="continue the backfill journaled as ID")
    parser.add_argument("--dry-run", action="store_true", help="count each batch's rows; change nothing")
    parser.add_argument("--log.level", dest="log_level", default="warning")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The command, from parsed arguments: its exit code. It prints to `out`, else `args.out` (as `migrate`'s
    `main(argv, out)` sets it), else stdout."""
    setup_logging(args.log_level, "logfmt")
    try:
        config = load_config(args.config, default_registry())
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)
    return asyncio.run(backfill(args, config, out or getattr(args, "out", None) or sys.stdout))


def main(argv: list[str], out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgwarden-responder migrate backfill")
    add_arguments(parser)
    return run(parser.parse_args(argv), out)


# ---- the journal row ---------------------------------------------------------------------------------------------


def _target(config: Config, name: str | None) -> PostgresTarget:
    if not name:
        raise Stop("give --target NAME", refused=True)
    server = config.server(name)
    if server is None:
        raise Stop(f"no target {name!r} in the configuration", refused=True)
    return PostgresTarget(server.name, server.conninfo, server.display, None, server.credentials)


def _new_plan(args: argparse.Namespace, settings: MigrationsSchema) -> dict[str, Any]:
    if not args.table or not args.assignment:
        raise Stop("give --table and --set (or --resume ID)", refused=True)
    relation = parse_table(args.table)
    if relation.schema == "pgwarden":  # e.g. `--set "last_key = NULL"`: another backfill's resume redoes rows
        raise Stop(
            "--table: the pgwarden schema is the backfills' own progress, never backfilled", refused=True
        )
    assignment = parse_assignment(args.assignment)
    return {
        "target": args.target,
        "schema": relation.schema,
        "table": relation.name,
        "column": assignment.column,
        "expression": assignment.expression,
        "where": parse_condition(args.where) if args.where is not None else None,
        "batch_size": _batch_size(args, settings),
        "progress_key": uuid.uuid4().hex,
    }


def _batch_size(args: argparse.Namespace, settings: MigrationsSchema) -> int:
    size = args.batch_size if args.batch_size is not None else settings.backfill.batch_size
    if not 1 <= size <= 1_000_000:
        raise Stop("--batch-size must be between 1 and 1000000", refused=True)
    return int(size)


def _refusal(dry_run: bool) -> Callable[[ActionRow, bool], str | None]:
    """Why a journaled backfill cannot be resumed (BUSY: its runner's heartbeat is fresh), or None."""

    def refusal(row: ActionRow, running_elsewhere: bool) -> str | None:
        if running_elsewhere:
            return BUSY
        if dry_run or row.mode != "enforce":
            return (
                f"backfill {row.id}: only a backfill journaled in enforce mode is resumed, without --dry-run"
            )
        if row.state is State.DONE and row.outcome is Outcome.SUCCEEDED:
            return f"backfill {row.id} is finished: nothing to resume"
        return None

    return refusal


async def _resume(args: argparse.Namespace, config: Config, journal: Journal, out: TextIO) -> ActionRow:
    stale_after, refusal = config.schema.replica_timeout, _refusal(args.dry_run)
    deadline = time.monotonic() + stale_after + 2
    while (taken := await journal.take_over(args.resume, ACTION, stale_after, refusal))[1] == BUSY:
        if time.monotonic() > deadline:
            raise Stop(f"backfill {args.resume} is being run by a live process", refused=True)
        print("waiting for the previous run's heartbeat to go stale", file=out, flush=True)
        await asyncio.sleep(max(0.2, stale_after / 3))
    row, why = taken
    if row is None:
        raise Stop(f"no backfill with id {args.resume}", refused=True)
    if why is not None:
        raise Stop(why, refused=True)
    return row


async def backfill(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    owner = f"backfill:{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    async with operator_journal(config, owner) as journal:
        action_id: int | None = None
        try:
            if args.resume is not None:
                if args.table or args.assignment or args.where is not None:
                    raise Stop(
                        "--resume goes on with the journaled --table, --set and --where: give none", True
                    )
                row = await _resume(args, config, journal, out)
                action_id, plan, mode = row.id, dict(row.plan or {}), str(row.mode)
                if args.batch_size is not None:  # the only setting a resumed backfill may change
                    plan["batch_size"] = _batch_size(args, config.schema.migrations)
                target = _target(config, str(plan.get("target")))
            else:
                target = _target(config, args.target)
                plan = _new_plan(args, config.schema.migrations)
                mode = "dry-run" if args.dry_run else "enforce"
                labels = {"target": target.name, "table": f"{plan['schema']}.{plan['table']}"}
                trigger = OperatorTrigger(ACTION, target.name, iso(datetime.now(UTC)) or "", labels)
                (started,) = await journal.record(
                    [Decision(trigger, State.RUNNING, ACTION, ACTION, mode, target)]
                )
                action_id = started.action_id
            gate = EffectGate(Authority(action_id, ACTION, mode), journal, plan)
            walk = Walk(action_id, target, config.schema.migrations, gate, out)
            result = await walk.run()
            outcome = Outcome.DRY_RUN if gate.dry_run else Outcome.SUCCEEDED
            await journal.finish(action_id, outcome, result)
            print(f"backfill {action_id}: {outcome.value}", file=out, flush=True)
            return 0
        except (Stop, SqlRefused, BackfillRefused) as exc:
            refused = not isinstance(exc, Stop) or exc.refused
            print(f"{'refused' if refused else 'stopped'}: {exc}", file=out, flush=True)
            if action_id is not None:
                await journal.finish(
                    action_id, Outcome.GUARDRAIL if refused else Outcome.FAILED, None, str(exc)
                )
            return 2 if refused else 1
        except Exception as exc:
            return await failed(journal, action_id, exc, out, "pgwarden-responder migrate backfill")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
