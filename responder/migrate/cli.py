"""`pgwarden-responder migrate ...`: the `migrate` subcommand and its sub-subcommands. `add_subcommand`
registers it on the program's subparsers (`responder.cli`); `main(argv)` parses `migrate ...` alone (tests).
`lint` and `backfill` register themselves with a function of their own module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pgwarden.cli import print_config_errors
from pgwarden.logs import setup_logging
from responder.config import Config, ConfigError, load_config
from responder.journal import ActionFilter, Journal
from responder.migrate import run as runner
from responder.migrate.backfill import add_backfill_command
from responder.migrate.lint import add_lint_command, sql_files
from responder.operator import operator_journal
from responder.playbooks import default_registry

# The sibling subcommands, each registering itself on `migrate`'s subparsers.
SIBLINGS: tuple[Callable[[Any], object], ...] = (add_lint_command, add_backfill_command)


def add_migrate_command(subparsers: Any) -> argparse.ArgumentParser:
    """`migrate` and its subcommands (`run`, `status`, and `lint`/`backfill` when present) on `subparsers`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="guarded schema migrations", description="Guarded schema migrations (runbook)."
    )
    commands = parser.add_subparsers(dest="migrate_command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a migration tool's command, guarded")
    _common(run)
    run.add_argument("--target", required=True, help="the configured target (targets:) to migrate")
    snap = run.add_mutually_exclusive_group()
    snap.add_argument("--snapshot", dest="snapshot", action="store_true", default=None, help="snapshot first")
    snap.add_argument("--no-snapshot", dest="snapshot", action="store_false", help="no snapshot (journaled)")
    run.add_argument(
        "--dry-run", action="store_true", help="pre-flight and lint, then print the plan; run nothing"
    )
    run.add_argument(
        "--lint",
        action="extend",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="the migration's SQL files or folders: linted against the target first, an error refuses the run",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    run.set_defaults(func=run_command)
    status = commands.add_parser("status", help="the journaled migrations, newest first")
    _common(status)
    status.add_argument("--target", help="only this target's")
    status.add_argument("--limit", type=int, default=20)
    status.set_defaults(func=status_command)
    for add_command in SIBLINGS:
        add_command(commands)
    return parser


def add_subcommand(commands: Any) -> None:
    """`pgwarden-responder migrate` on the program's subcommands (`responder.cli.SUBCOMMANDS`)."""
    parser = add_migrate_command(commands)
    parser.set_defaults(run=lambda args, _registry: args.func(args))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    parser.add_argument("--log.level", dest="log_level", default="warning")


def _config(args: argparse.Namespace) -> Config | int:
    setup_logging(args.log_level, "logfmt")
    try:
        return load_config(args.config, default_registry())
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)


async def _with_journal(config: Config, use: Callable[[Journal], Any]) -> int:
    owner = f"migrate:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    async with operator_journal(config, owner) as journal:
        # at once: the runs of processes that died are marked interrupted before the pre-flight reads the journal
        await journal.heartbeat(config.schema.replica_timeout)
        stop_on_sigterm()
        code: int = await use(journal)
        return code


def _out(args: argparse.Namespace) -> TextIO:
    out: TextIO = getattr(args, "out", None) or sys.stdout
    return out


def stop_on_sigterm() -> None:
    """SIGTERM (a CI job cancelled, a pod stopped) cancels the run like Ctrl-C: the command is killed and the
    journal row ends `interrupted`. Only the main thread can take signals; elsewhere nothing changes."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def run_command(args: argparse.Namespace) -> int:
    out = _out(args)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("migrate run: give the command after --", file=out)
        return 2
    config = _config(args)
    if isinstance(config, int):
        return 2
    server = config.server(args.target)
    if server is None:
        print(f"migrate run: no target {args.target!r} in {args.config}", file=out)
        return 2
    if args.snapshot and server.rds is None:
        print(f"migrate run: --snapshot: target {server.name} has no rds:", file=out)
        return 2
    try:
        lint_files = tuple(sql_files(args.lint))
    except ValueError as exc:
        print(f"migrate run: --lint: {exc}", file=out)
        return 2
    if args.lint and not lint_files:
        print(f"migrate run: --lint: no .sql file in {', '.join(map(str, args.lint))}", file=out)
        return 2
    request = runner.Request(server.name, tuple(argv), args.snapshot, bool(args.dry_run), lint_files)
    return asyncio.run(_with_journal(config, lambda j: runner.run(config, server, request, j, out)))


def status_command(args: argparse.Namespace) -> int:
    out = _out(args)
    config = _config(args)
    if isinstance(config, int):
        return 2

    async def show(journal: Journal) -> int:
        rows = await journal.find(ActionFilter(action=runner.ACTION, limit=1000))
        rows = [r for r in rows if args.target is None or r.labels.get("target") == args.target][: args.limit]
        if not rows:
            print("no migrations journaled", file=out)
        for row in rows:
            body = row.result or row.plan or {}
            snap = (body.get("snapshot") or {}).get("id") or "-"
            state = row.outcome.value if row.outcome is not None else row.state.value
            attempts = len(body.get("attempts") or [])
            print(
                f"{row.id}\t{row.starts_at}\t{row.labels.get('target')}\t{state}\tattempts={attempts}"
                f"\tsnapshot={snap}\t{row.labels.get('command', '')}"
                + (f"\t{row.error}" if row.error else ""),
                file=out,
            )
        return 0

    return asyncio.run(_with_journal(config, show))


def main(argv: list[str], out: TextIO | None = None) -> int:
    """`migrate ...` (argv without the program's name): its exit code."""
    parser = argparse.ArgumentParser(prog="pgwarden-responder")
    add_migrate_command(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    args.out = out
    code: int = args.func(args)
    return code
