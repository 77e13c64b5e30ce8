"""`pgwarden-responder report`: build one report now and write it to a file (HTML, plus Markdown next to it).

    pgwarden-responder report --period weekly --prometheus http://prometheus:9090 --out weekly.html \\
        [--config responder.yml [--target NAME]] [--selector 'target="production"'] [--end 2026-11-30T00:00:00Z]

With `--config`, the journal (drills, VACUUM runs) and the target's catalog (duplicate indexes, statistics
age) are read too; without, their sections say `no data`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from pgwarden.cli import print_config_errors
from pgwarden.redact import redact
from responder.config import Config, ConfigError, Server, load_config
from responder.core import ActionRegistry
from responder.journal import Journal, JournalUnavailable, open_store
from responder.report.builder import JournalRows, build_report
from responder.report.catalog import Catalog, catalog_at
from responder.report.model import Report
from responder.report.render import to_html, to_markdown


def journal_reader(journal: Journal) -> JournalRows:
    async def rows(action: str, since: float, until: float) -> list[dict[str, Any]]:
        return [row.to_json() for row in await journal.journaled(action, since, until)]

    return rows


def _end(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: use ISO 8601 or Unix seconds") from None


def add_subcommand(commands: Any) -> None:
    """`pgwarden-responder report`."""
    report = commands.add_parser(
        "report",
        help="build a maintenance report now",
        description="Build one maintenance report now: HTML, and Markdown next to it.",
    )
    report.set_defaults(run=run_report_command)
    report.add_argument("--period", choices=("weekly", "monthly", "quarterly"), required=True)
    report.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    report.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the HTML file (Markdown: .md)"
    )
    report.add_argument(
        "--config", dest="report_config", type=Path, help="read the journal and the target too"
    )
    report.add_argument(
        "--target", help="the configured target whose catalog is read (default: the only one)"
    )
    report.add_argument(
        "--selector", default="", help='extra PromQL label matchers, e.g. target="production"'
    )
    report.add_argument("--end", type=_end, help="the period's end (default: now)")


def _server(config: Config, name: str | None) -> Server | None:
    """The target whose catalog is read: the named one, or the only one configured."""
    if name is not None:
        return config.server(name)
    return config.servers[0] if len(config.servers) == 1 else None


async def _catalog(server: Server) -> Catalog | None:
    try:
        return await catalog_at(server.conninfo, server.connect_timeout, server.credentials)
    except psycopg.Error as exc:
        print(
            f"report: {server.name} not readable ({type(exc).__name__}); its sections say no data",
            file=sys.stderr,
        )
        return None


async def _build(args: argparse.Namespace, config: Config | None) -> Report:
    if config is None:
        return await build_report(args.period, args.prometheus, selector=args.selector, end=args.end)
    server = _server(config, args.target)
    store = open_store(config.journal, pool_size=1, credentials=config.journal_credentials)
    journal = Journal(store, f"report:{time.time():.0f}")
    await journal.start()
    try:
        return await build_report(
            args.period,
            args.prometheus,
            selector=args.selector,
            journal=journal_reader(journal),
            catalog=await _catalog(server) if server is not None else None,
            end=args.end,
        )
    finally:
        await journal.close()


def run_report_command(args: argparse.Namespace, registry: ActionRegistry) -> int:
    config = None
    if args.report_config is not None:
        try:
            config = load_config(args.report_config, registry)
        except ConfigError as exc:
            return print_config_errors(str(args.report_config), exc.errors)
        if args.target is not None and config.server(args.target) is None:
            print(f"report: --target {args.target!r} is not a configured target", file=sys.stderr)
            return 2
    try:
        report = asyncio.run(_build(args, config))
    except JournalUnavailable as exc:
        print(f"report: journal unavailable: {redact(str(exc))}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_html(report), encoding="utf-8")
    markdown = to_markdown(report)
    args.out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0
