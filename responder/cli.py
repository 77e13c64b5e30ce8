"""`pgwarden-responder` / `python -m responder`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from pgwarden.cli import add_common_flags, print_config_errors
from pgwarden.logs import setup_logging
from pgwarden.webconfig import load_web_config
from responder import __version__, keys, recover, report_command
from responder.advice import cli as advise_cli
from responder.api.auth import bearer_passes_web_auth
from responder.app import make_app
from responder.config import ConfigError, load_config, summary, warnings
from responder.core import ActionRegistry
from responder.journal import JournalUnavailable
from responder.migrate import cli as migrate_cli
from responder.playbooks import default_registry

log = logging.getLogger("responder")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


# Each subcommand registers itself (its parser, its flags, `run`) with a function of its own module.
SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    recover.add_subcommand,
    report_command.add_subcommand,
    migrate_cli.add_subcommand,
    advise_cli.add_subcommand,
)


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: a flag it does not know is its own usage error (`pgwarden-responder recover:
    error: ...`, with recover's usage), not the top-level parser's."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgwarden-responder",
        description="Guarded Alertmanager webhook responder for PostgreSQL on AWS RDS. Without a subcommand:"
        " serve the webhook, the API and the console.",
    )
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    add_common_flags(parser, program="pgwarden-responder", version=__version__, listen=":9096")
    commands = parser.add_subparsers(
        dest="command",
        title="subcommands",
        metavar="SUBCOMMAND",
        help="`SUBCOMMAND --help` for its flags",
        parser_class=SubcommandParser,
    )
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(commands)
    return parser


def main(argv: list[str] | None = None, registry: ActionRegistry | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level, args.log_format)
    if args.command is not None:
        return int(args.run(args, registry or default_registry()))
    try:
        config = load_config(args.config, registry or default_registry())
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)
    try:
        web_config = load_web_config(args.web_config_file)
    except ConfigError as exc:
        return print_config_errors(str(args.web_config_file), exc.errors)
    if args.check_config:
        print(f"{args.config}: OK")
        print(summary(config))
        print(f"web: {web_config.describe()}")
        for line in warnings(config):
            print(line)
        return 0
    host, port = args.listen
    log.info(
        "starting",
        extra={
            "version": __version__,
            "listen": f"{web_config.scheme}://{host or '0.0.0.0'}:{port}",
            "mode": config.mode,
            "journal": config.journal_display(),
            "playbooks": len(config.playbooks),
        },
    )
    # Where a bearer token is the credential (the webhook's; a person's on the token API), it stands in for
    # basic-auth credentials: an Authorization header carries one or the other.
    app = web_config.apply(make_app(config), also_accept=bearer_passes_web_auth)
    try:
        return asyncio.run(serve(app, host, port, web_config.ssl_context, config.schema.shutdown_timeout + 5))
    except JournalUnavailable as exc:
        log.error("journal unavailable at start-up", extra={"error": str(exc)})
        return 1
    except ConfigError as exc:  # a schedule's target that does not resolve, found at start-up
        return print_config_errors(str(args.config), exc.errors)


async def serve(
    app: web.Application, host: str | None, port: int, ssl_context: ssl.SSLContext | None, grace: float
) -> int:
    """Serve `app` until SIGTERM or SIGINT, then drain: stop listening, let running actions finish (up to
    `shutdown_timeout`), close the journal; 0. A second signal while draining interrupts the running actions
    at once (each journaled `interrupted`) and the drain ends with them; 1. `grace` bounds in-flight requests."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    interrupting: list[asyncio.Task[None]] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not stopping.is_set():
            log.info("stopping: draining running actions", extra={"signal": name, "again": "interrupts them"})
            stopping.set()
        elif not interrupting and keys.DISPATCHER in app:
            log.warning("stopping now: interrupting running actions", extra={"signal": name})
            interrupting.append(loop.create_task(app[keys.DISPATCHER].shutdown(0)))

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    # The server's own signal handling is off: it stops the loop from inside a callback, which is what left a
    # drain unfinished (a traceback, or a hang on a second signal).
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=grace)
    try:
        await runner.setup()  # the journal opens, an earlier process's work is recovered
        if not stopping.is_set():
            await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
            await stopping.wait()
    finally:
        await runner.cleanup()  # the drain: see `responder.lifecycle`
        if interrupting:
            await interrupting[0]
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    if interrupting:
        log.warning("stopped; running actions were interrupted")
        return 1
    log.info("stopped")
    return 0
