"""`pgwarden-responder recover`: the runbook's point-in-time recovery, guided, on the drill engine.

1. window: the time is checked against EarliestRestorableTime/LatestRestorableTime;
2. restore: RestoreDBInstanceToPointInTime to `<id>-recovery-<yyyymmdd>` (tagged `pgwarden:recovery=<action
   id>`, never `pgwarden:drill`: the sweeper leaves it alone), waiting with progress;
3. compare: the `recovery.checks` against the recovered instance and production, side by side;
4. swap (only with `--swap`): pre-checks (the comparison passed, the recovered instance is available,
   `<id>-old` is free), then `--yes` on this invocation or a typed confirmation, then maintenance hook, drain,
   rename production to `<id>-old` and the recovered instance to `<id>`, the Secrets Manager secret, restart
   hook, maintenance off.
When it will be swapped in, the recovered instance gets production's settings (Multi-AZ, deletion protection,
parameter and option groups, storage, monitoring, Performance Insights, backups, CA) before the comparison.

Every step (and each part of the swap) is journaled in the plan of one journal row (action `recover`) when it
is done; `--resume <id>` continues after the last finished one, in the mode the row was journaled with. A
finished row cannot be resumed, except a real recovery that was not swapped, with `--resume <id> --swap`.
`--dry-run` prints every API call and hook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pgwarden.cli import print_config_errors
from pgwarden.logs import setup_logging
from responder.aws import RdsApi
from responder.config import Config, ConfigError, load_config
from responder.core import ActionRegistry, RdsTarget
from responder.decision import Decision, OperatorTrigger
from responder.drills import engine
from responder.drills import recovery as steps
from responder.drills.models import RecoverySchema
from responder.drills.recovery import ACTION, Context, RecoveryStopped
from responder.drills.swap import step_swap
from responder.effects import Authority, EffectGate
from responder.journal import ActionRow, Journal
from responder.operator import failed, operator_journal
from responder.outcomes import Outcome, State
from responder.playbooks import default_registry

log = logging.getLogger("responder.recover")


SUMMARY = "guided point-in-time recovery of an RDS PostgreSQL instance"
DESCRIPTION = "Guided point-in-time recovery of an RDS PostgreSQL instance (the runbook's procedure)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """recover's flags. `--config` has no default of its own: `pgwarden-responder`'s (or `build_parser`'s)
    stands, so that `pgwarden-responder --config FILE recover` reads FILE too."""
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML configuration file")
    parser.add_argument("--instance", help="the production instance identifier")
    parser.add_argument("--to", dest="to", help="the time to recover to, RFC 3339 (2024-01-15T14:30:00Z)")
    parser.add_argument("--region", help="default: aws.region")
    parser.add_argument("--class", dest="instance_class", help="the recovered instance's class")
    parser.add_argument("--swap", action="store_true", help="after the comparison, swap it in for production")
    parser.add_argument("--yes", action="store_true", help="do not ask before the swap")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and every API call; change nothing"
    )
    parser.add_argument(
        "--resume", type=int, metavar="ID", help="continue the recovery journaled as action ID"
    )
    parser.add_argument("--log.level", dest="log_level", default="warning")


def add_subcommand(commands: Any) -> None:
    """`pgwarden-responder recover`."""
    parser = commands.add_parser("recover", help=SUMMARY, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    """recover's flags on a parser of their own, for `main`."""
    parser = argparse.ArgumentParser(prog="pgwarden-responder recover", description=DESCRIPTION)
    parser.set_defaults(config=Path("responder.yml"))
    add_arguments(parser)
    return parser


def _journal_owner() -> str:
    return f"recover:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# The refusal while the recovery runs in a live process: wait for its heartbeat to go stale, then take it over.
BUSY = "busy"


def resume_refusal(row: ActionRow, swap: bool, dry_run: bool) -> str | None:
    """Why the journaled recovery `row` cannot be resumed with these flags, or None when it can. A finished row
    keeps its outcome: only a real recovery that stopped before its swap may go on, to swap (`--swap`)."""
    action_id, mode, outcome = row.id, row.mode, row.outcome
    if dry_run and mode != "dry-run":
        return f"recovery {action_id} was journaled in enforce mode: --dry-run cannot resume it"
    if row.state is not State.DONE or outcome not in (Outcome.SUCCEEDED, Outcome.DRY_RUN):
        return None
    steps = (row.plan or {}).get("steps") or {}
    swappable = mode == "enforce" and outcome is Outcome.SUCCEEDED and "swap" not in steps
    if swappable and swap:
        return None
    hint = f" (--resume {action_id} --swap to swap it in)" if swappable else "; start a new recovery"
    return f"recovery {action_id} is finished ({outcome}): nothing to resume{hint}"


# ---- the command -----------------------------------------------------------------------------------------------


async def _resume_row(
    args: argparse.Namespace, config: Config, journal: Journal, out: TextIO
) -> tuple[int, dict[str, Any], str]:
    """Take the journaled recovery over (once its last runner's heartbeat is stale) with its plan."""
    stale_after = config.schema.replica_timeout
    deadline = time.monotonic() + stale_after + 2

    def refusal(row: ActionRow, running_elsewhere: bool) -> str | None:
        return BUSY if running_elsewhere else resume_refusal(row, args.swap, args.dry_run)

    while (taken := await journal.take_over(args.resume, ACTION, stale_after, refusal))[1] == BUSY:
        if time.monotonic() > deadline:
            raise RecoveryStopped(f"recovery {args.resume} is being run by a live process", Outcome.GUARDRAIL)
        print("waiting for the previous run's heartbeat to go stale", file=out, flush=True)
        await asyncio.sleep(max(0.2, stale_after / 3))
    row, why = taken
    if row is None:
        raise RecoveryStopped(f"no recovery with id {args.resume}", Outcome.GUARDRAIL)
    if why is not None:
        raise RecoveryStopped(why, Outcome.GUARDRAIL)
    plan = dict(row.plan or {})
    if not plan:
        raise RecoveryStopped(f"recovery {args.resume} journaled no plan to resume")
    if args.swap:
        plan["swap"] = True
    plan.pop("confirmed", None)  # a confirmation counts only on the invocation that swaps
    return args.resume, plan, str(row.mode)


async def _open_row(
    args: argparse.Namespace, config: Config, journal: Journal, out: TextIO
) -> tuple[int, dict[str, Any], str]:
    """A new journal row for the recovery the flags ask for (or the resumed one), its plan and its mode (a
    resumed recovery keeps the mode it was journaled with)."""
    if args.resume is not None:
        return await _resume_row(args, config, journal, out)
    if not args.instance or not args.to:
        raise RecoveryStopped("give --instance and --to (or --resume ID)", Outcome.GUARDRAIL)
    assert config.aws is not None
    region = args.region or config.aws.region
    try:
        when = engine.parse_time(args.to)
    except ValueError:
        raise RecoveryStopped(f"--to {args.to!r} is not an RFC 3339 time", Outcome.GUARDRAIL) from None
    target = RdsTarget(args.instance, region)
    labels = {"instance": args.instance, "region": region, "to": engine.iso(when) or args.to}
    mode = "dry-run" if args.dry_run else "enforce"
    trigger = OperatorTrigger(ACTION, target.identifier, labels["to"], labels)
    decision = Decision(trigger, State.RUNNING, ACTION, ACTION, mode, target)
    (started,) = await journal.record([decision])  # running at once, owned by this process
    action_id = started.action_id
    plan: dict[str, Any] = {
        "instance": args.instance,
        "region": region,
        "to": labels["to"],
        "recovered": engine.derived_identifier(args.instance, f"-recovery-{when:%Y%m%d}"),
        "old": engine.derived_identifier(args.instance, "-old"),
        "instance_class": args.instance_class,
        "swap": bool(args.swap),
        "steps": {},
    }
    await journal.set_plan(action_id, plan)
    print(f"recovery {action_id}: {args.instance} ({region}) to {labels['to']}", file=out, flush=True)
    return action_id, plan, mode


async def recover(
    args: argparse.Namespace, config: Config, out: TextIO, confirm: Callable[[str], str]
) -> int:
    recovery = config.schema.recovery
    if recovery is None or config.aws is None:
        print("recover needs a recovery: section and an aws: section in the configuration", file=out)
        return 2
    async with operator_journal(config, _journal_owner()) as journal:
        action_id: int | None = None
        try:
            action_id, plan, mode = await _open_row(args, config, journal, out)
            gate = _gate(journal, action_id, mode, plan, recovery)
            confirmed = bool(args.yes)  # this invocation's --yes only: never one given to an earlier one
            ctx = Context(
                config,
                recovery,
                RdsApi(config.aws),
                journal,
                action_id,
                plan,
                out,
                gate.dry_run,
                gate,
                confirmed,
            )
            await run_steps(ctx, confirm)
            outcome = Outcome.DRY_RUN if ctx.dry_run else Outcome.SUCCEEDED
            await journal.finish(action_id, outcome, {"steps": sorted(plan["steps"])})
            print(f"recovery {action_id}: {outcome.value}", file=out, flush=True)
            return 0
        except RecoveryStopped as exc:
            print(f"stopped: {exc}", file=out, flush=True)
            if action_id is not None:
                await journal.finish(action_id, exc.outcome, None, str(exc))
            return 2 if exc.outcome is Outcome.GUARDRAIL else 1
        except Exception as exc:
            return await failed(journal, action_id, exc, out, "pgwarden-responder recover --config ...")


async def run_steps(ctx: Context, confirm: Callable[[str], str]) -> None:
    """Every step not done yet, in order (in dry-run: the plan of every call, printed and journaled)."""
    if not ctx.done("window"):
        await steps.step_window(ctx)
    else:
        ctx.say("[1/4] window: done before")
    if ctx.dry_run:
        ctx.plan["dry_run_calls"] = steps.dry_run_plan(ctx)
        ctx.say("dry run: these calls would be made, in order:")
        for call in ctx.plan["dry_run_calls"]:
            ctx.say("  " + json.dumps(call, sort_keys=True))
        await ctx.gate.save_plan(ctx.plan)
        return
    if not ctx.done("restore"):
        await steps.step_restore(ctx)
    else:
        ctx.say("[2/4] restore: done before")
    if ctx.plan["swap"] and not ctx.done("settings"):
        await steps.step_settings(ctx)
    if not ctx.done("compare"):
        await steps.step_compare(ctx)
    else:
        ctx.say("[3/4] compare: done before")
    if ctx.plan["swap"] and not ctx.done("swap"):
        await step_swap(ctx, confirm)
    elif not ctx.plan["swap"]:
        ctx.say(f"[4/4] swap: not asked for (--resume {ctx.action_id} --swap to swap it in)")


def _gate(
    journal: Journal, action_id: int, mode: str, plan: dict[str, Any], recovery: RecoverySchema
) -> EffectGate:
    """The recovery's effect gate: it may restore `<id>-recovery-<date>`, rename production to `<id>-old` and
    the recovered instance to `<id>`, and write the recovery's secret; nothing else."""
    authority = Authority(
        action_id,
        ACTION,
        mode,
        instance=plan["instance"],
        region=plan["region"],
        secrets=frozenset({recovery.secret.secret_id} if recovery.secret is not None else ()),
        renames=frozenset({(plan["instance"], plan["old"])}),
    )
    return EffectGate(authority, journal, plan)


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        return ""
    return input(prompt)


def run(
    args: argparse.Namespace,
    registry: ActionRegistry,
    out: TextIO | None = None,
    confirm: Callable[[str], str] = _ask,
) -> int:
    """The recovery the parsed flags ask for (logging already set up); the exit code."""
    try:
        config = load_config(args.config, registry)
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)
    return asyncio.run(recover(args, config, out or sys.stdout, confirm))


def main(
    argv: list[str],
    registry: ActionRegistry | None = None,
    out: TextIO | None = None,
    confirm: Callable[[str], str] = _ask,
) -> int:
    """`recover`'s flags alone (`pgwarden-responder recover` parses them as its subcommand)."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, "logfmt")
    return run(args, registry or default_registry(), out, confirm)
