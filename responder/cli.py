"""`pgwarden-responder` / `python -m responder`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from pgwarden.cli import add_common_flags, print_config_errors
from pgwarden.logs import setup_logging
from pgwarden.webconfig import load_web_config
from responder import __version__, recover
from responder.app import bearer_passes_web_auth, make_app
from responder.config import ConfigError, load_config, summary
from responder.core import ActionRegistry
from responder.journal import JournalUnavailable
from responder.playbooks import default_registry
from responder.report_command import add_report_command, run_report_command

log = logging.getLogger("responder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgwarden-responder",
        description="Guarded Alertmanager webhook responder for PostgreSQL on AWS RDS."
        " `pgwarden-responder recover --help`: guided point-in-time recovery.",
    )
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    add_common_flags(parser, program="pgwarden-responder", version=__version__, listen=":9096")
    commands = parser.add_subparsers(dest="command", metavar="{report}")
    add_report_command(commands)  # no subcommand: serve
    return parser


def main(argv: list[str] | None = None, registry: ActionRegistry | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["recover"]:
        return recover.main(argv[1:], registry)
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    if args.command == "report":
        return run_report_command(args, registry or default_registry())
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
    try:
        web.run_app(
            # Where a bearer token is the credential (the webhook's; a person's on the token API), it stands in for
            # basic-auth credentials: an Authorization header carries one or the other.
            web_config.apply(make_app(config), also_accept=bearer_passes_web_auth),
            host=host,
            ssl_context=web_config.ssl_context,
            port=port,
            print=None,
            access_log=None,
            shutdown_timeout=config.schema.shutdown_timeout + 5,
            handle_signals=True,
        )
    except JournalUnavailable as exc:
        log.error("journal unavailable at start-up", extra={"error": str(exc)})
        return 1
    except ConfigError as exc:  # a schedule's target that does not resolve, found at start-up
        return print_config_errors(str(args.config), exc.errors)
    return 0
