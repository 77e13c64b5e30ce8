"""`pgwarden-responder` / `python -m responder`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from pgwarden.logs import setup_logging
from responder import __version__
from responder.app import make_app
from responder.config import ConfigError, load_config, summary
from responder.journal import JournalUnavailable
from responder.playbooks import default_registry
from responder.playbooks.base import ActionRegistry

log = logging.getLogger("responder")


def parse_listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid listen address {text!r}: use HOST:PORT or :PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgwarden-responder",
        description="Guarded Alertmanager webhook responder for PostgreSQL on AWS RDS.",
    )
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        type=parse_listen_address,
        default=(parse_listen_address(":9096")),
        help="HOST:PORT to listen on (default :9096)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration, print a summary, exit"
    )
    parser.add_argument("--version", action="version", version=f"pgwarden-responder {__version__}")
    return parser


def main(argv: list[str] | None = None, registry: ActionRegistry | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        config = load_config(args.config, registry or default_registry())
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.errors)} error(s)", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{args.config}: OK")
        print(summary(config))
        return 0
    host, port = args.listen
    log.info(
        "starting",
        extra={
            "version": __version__,
            "listen": f"{host}:{port}",
            "mode": config.mode,
            "journal": config.journal_display(),
            "playbooks": len(config.playbooks),
        },
    )
    try:
        web.run_app(
            make_app(config),
            host=host,
            port=port,
            print=None,
            access_log=None,
            shutdown_timeout=config.shutdown_timeout + 5,
            handle_signals=True,
        )
    except JournalUnavailable as exc:
        log.error("journal unavailable at start-up", extra={"error": str(exc)})
        return 1
    return 0
