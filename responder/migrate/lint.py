"""`pgwarden-responder migrate lint`: squawk's rules over the migration files, then what only a tool connected to
the target can know (its tables' sizes, its long transactions), and CONCURRENTLY inside a transaction block.

Exit codes: 0 no error (warnings allowed), 2 an error (a migration `run` would refuse) or bad arguments.
The session on the target is read-only, with a statement timeout: lint never changes the target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import psycopg

from pgwarden.cli import print_config_errors
from pgwarden.postgres import SessionOptions, connect
from responder.config import ConfigError, Server, load_config
from responder.core import ActionRegistry
from responder.migrate.findings import FORMATS, Finding, has_errors, render
from responder.migrate.live import Settings, Target, live_findings
from responder.migrate.settings import MigrationsSchema
from responder.migrate.squawk import SquawkError, run_squawk
from responder.migrate.statements import SqlError, Statement, is_concurrent, parse_file, renames_session
from responder.playbooks import default_registry

APPLICATION_NAME = "pgwarden-migrate-lint"
STATEMENT_TIMEOUT = 10.0  # seconds, for each of lint's own queries
LOCK_TIMEOUT = (
    1.0  # EXPLAIN of an UPDATE/DELETE locks its table ROW EXCLUSIVE: never wait long behind a migration
)
STATIC_NOTE = (
    "no --target: only the static rules ran (squawk, CONCURRENTLY in a transaction block); "
    "table sizes and long transactions need --target"
)

RENAMED = (
    "sets application_name: `migrate run`'s watchdog finds the migration's sessions by the name PGAPPNAME gives "
    "them, and would no longer see this one queue the application behind its locks"
)


def add_lint_command(subparsers: Any) -> None:
    """Register `lint` on the `migrate` subcommands; its `func` returns the exit code."""
    parser = subparsers.add_parser(
        "lint",
        help="lint migration files: squawk, plus the target's table sizes and long transactions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="responder.yml (its targets: and migrations:)")
    parser.add_argument("--target", help="the configured target to weigh the statements against (read-only)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="SQL files or folders of them")
    parser.set_defaults(func=run_lint_command)


def sql_files(paths: Sequence[Path]) -> list[Path]:
    """The files: each given file, and each folder's *.sql (recursively, sorted); ValueError for a missing one."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(_sql_under(path))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or directory")
    return list(dict.fromkeys(files))


def _sql_under(folder: Path) -> list[Path]:
    """The folder's *.sql, sorted, through symlinked folders too (a migration tool follows them: Path.rglob
    did not, and left them unlinted), each real folder once (a symlink loop ends)."""
    found: list[Path] = []
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        found.extend(Path(root, n) for n in names if n.endswith(".sql") and Path(root, n).is_file())
    return sorted(found)


def run_lint_command(
    args: argparse.Namespace, registry: ActionRegistry | None = None, out: TextIO | None = None
) -> int:
    """`migrate lint` with parsed arguments; prints the report (to `out`, else `args.out` as `migrate`'s
    `main(argv, out)` sets it, else stdout) and returns the exit code."""
    out = out or getattr(args, "out", None) or sys.stdout
    if args.target and not args.config:
        print("migrate lint: --target needs --config", file=sys.stderr)
        return 2
    try:
        files = sql_files(args.paths)
    except ValueError as exc:
        print(f"migrate lint: {exc}", file=sys.stderr)
        return 2
    migrations = MigrationsSchema()
    server = None
    if args.config:
        try:
            config = load_config(args.config, registry or default_registry())
        except ConfigError as exc:
            return print_config_errors(str(args.config), exc.errors)
        migrations = config.schema.migrations
        if args.target:
            server = config.server(args.target)
            if server is None:
                names = ", ".join(s.name for s in config.servers) or "none"
                print(f"migrate lint: no target {args.target!r} in {args.config} ({names})", file=sys.stderr)
                return 2
    try:
        findings, notes = asyncio.run(lint(files, Settings.of(migrations), server))
    except (SquawkError, OSError) as exc:
        print(f"migrate lint: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"migrate lint: a query of target {args.target} failed: {exc}", file=sys.stderr)
        return 2
    out.write(render(findings, notes, args.format))
    return 2 if has_errors(findings) else 0


async def lint(
    files: Sequence[Path], settings: Settings, server: Server | None
) -> tuple[list[Finding], list[str]]:
    """Every finding over `files`, and the report's notes; with `server`, the live rules too. Raises SquawkError,
    OSError (a file unreadable, the target unreachable), psycopg.Error (a query of the target failed)."""
    statements: list[Statement] = []
    findings: list[Finding] = []
    for path in files:
        try:
            statements.extend(parse_file(path))
        except SqlError as exc:
            findings.append(Finding(str(path), exc.line, "error", "syntax-error", exc.message))
    findings.extend(static_findings(statements))
    if server is None:
        findings.extend(await run_squawk(files))
        return findings, [STATIC_NOTE]
    options = SessionOptions(
        APPLICATION_NAME,
        connect_timeout=server.connect_timeout,
        lock_timeout=LOCK_TIMEOUT,
        statement_timeout=STATEMENT_TIMEOUT,
    )
    try:
        conn = await connect(server.conninfo, options, server.credentials)
    except Exception as exc:  # psycopg's and the credentials' errors alike: say which target, not a traceback
        raise OSError(f"cannot reach target {server.name} ({server.display}): {exc}") from None
    async with conn:
        target = await Target.open(conn)
        findings.extend(await run_squawk(files, await target.server_version()))
        findings.extend(await live_findings(statements, target, settings))
    return findings, []


def static_findings(statements: Sequence[Statement]) -> list[Finding]:
    """What needs no target: CONCURRENTLY inside a transaction block, which PostgreSQL refuses outright; a DO
    block whose statements lint cannot read (a warning: it may do anything)."""
    hidden = [Finding(str(s.path), s.line, "warning", "hidden-sql", s.hidden) for s in statements if s.hidden]
    renamed = [
        Finding(str(s.path), s.line, "error", "application-name", RENAMED)
        for s in statements
        if renames_session(s.node)
    ]
    return (
        hidden
        + renamed
        + [
            Finding(
                str(s.path),
                s.line,
                "error",
                "concurrently-in-transaction",
                "CONCURRENTLY cannot run inside a transaction block"
                + (
                    f" ({s.wrapper} runs this migration in one)"
                    if s.wrapper
                    else " (BEGIN ... COMMIT in this file)"
                )
                + ": give it its own migration, outside any transaction",
            )
            for s in statements
            if s.in_transaction and is_concurrent(s.node)
        ]
    )
