"""`pgwarden-responder advise`: query plans and index advice for one configured target, now.

    pgwarden-responder advise --config responder.yml --target NAME [--database DB] [--top 50] [--format text|json]

Exit status: 0 with the advice printed, 1 when the target could not be examined, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pgwarden.cli import print_config_errors
from responder.advice.advisor import Server, Settings, advise
from responder.advice.render import to_json, to_text
from responder.config import ConfigError, load_config
from responder.core import ActionRegistry

DEFAULT_MIN_SAVING = Settings().min_saving


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("a fraction between 0 and 1, e.g. 0.5")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def add_subcommand(commands: Any) -> None:
    """`pgwarden-responder advise` on the program's subcommands (`responder.cli.SUBCOMMANDS`)."""
    parser = commands.add_parser(
        "advise",
        help="query plans and index advice for a target",
        description="Generic plans of the top statements of pg_stat_statements (never executed), what they"
        " show, and the indexes that would make them cheaper (weighed with hypopg's hypothetical indexes).",
    )
    parser.set_defaults(run=run_advise)
    # no default of its own: `pgwarden-responder --config FILE advise` reads FILE too (as `recover`)
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="YAML configuration file")
    parser.add_argument("--target", required=True, help="the configured target (targets:) to advise on")
    parser.add_argument(
        "--database",
        action="append",
        metavar="DB",
        help="only this database (repeatable; default: every one)",
    )
    parser.add_argument("--top", type=_positive, default=50, help="statements per database, by total time")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--min-saving",
        type=_fraction,
        default=DEFAULT_MIN_SAVING,
        help="recommend an index when it cuts its statements' cost (weighted by calls) by this fraction",
    )


def run_advise(args: argparse.Namespace, registry: ActionRegistry) -> int:
    try:
        config = load_config(args.config, registry)
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)
    target = config.server(args.target)
    if target is None:
        print(f"advise: --target {args.target!r} is not a configured target", file=sys.stderr)
        return 2
    settings = Settings(top=args.top, min_saving=args.min_saving, connect_timeout=target.connect_timeout)
    server = Server(target.name, target.conninfo, target.credentials)
    advice = asyncio.run(advise(server, settings, set(args.database) if args.database else None))
    print(to_json(advice) if args.format == "json" else to_text(advice), end="")
    return 1 if advice.error or any(db.error for db in advice.databases) else 0
