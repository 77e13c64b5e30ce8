"""pgwarden-exporter's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from exporter import __version__
from exporter.app import make_app
from exporter.assemble import resolve_targets, scheduled_collectors
from exporter.aws.rds import summary as aws_summary
from exporter.config import ConfigError, ExporterConfig, config_from_environment, load_config_file
from exporter.custom import ExtendedQueries
from exporter.custom.queries_file import file_hashsum, load_query_file
from exporter.flags import (
    UpstreamFlags,
    add_flags,
    apply_flags,
    dump_maps,
    read_flags,
    rename_namespaces,
    serve_options,
)
from exporter.serving import ServeOptions
from exporter.systemd import NoSocket, inherited_socket
from exporter.target import Target
from pgwarden.cli import add_common_flags, print_config_errors
from pgwarden.credentials import CheckConfigSecrets, DsnSecret, read_secret
from pgwarden.durations import format_duration
from pgwarden.logs import setup_logging
from pgwarden.webconfig import WebConfig, load_web_config

log = logging.getLogger("pgwarden.exporter")

IMPLIED_AWS = "no aws: section; the targets' rds: blocks are polled with the default aws: settings"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pgwarden-exporter",
        allow_abbrev=False,  # a misspelt flag is an error, never taken for a longer one
        description="Prometheus exporter for PostgreSQL and AWS RDS. Without --config it scrapes the servers in "
        "DATA_SOURCE_NAME (comma-separated DSNs), as postgres_exporter does.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--extend.query-path",
        dest="extend_query_path",
        type=Path,
        default=os.environ.get("PG_EXPORTER_EXTEND_QUERY_PATH") or None,
        metavar="FILE",
        help="postgres_exporter's queries.yaml to run too (env PG_EXPORTER_EXTEND_QUERY_PATH)",
    )
    parser.add_argument(
        "--auto-discover-databases",
        dest="auto_discover_databases",
        action=argparse.BooleanOptionalAction,
        help="run the queries.yaml queries without master: true in every database, not only the DSN's "
        "(env PG_EXPORTER_AUTO_DISCOVER_DATABASES)",
    )
    add_common_flags(parser, program="pgwarden-exporter", version=__version__, listen=":9187")
    add_flags(parser)
    return parser.parse_args(argv)


def load(
    args: argparse.Namespace, upstream: UpstreamFlags, fetch: Callable[[DsnSecret], str] = read_secret
) -> tuple[ExporterConfig, list[Target]]:
    config = load_config_file(args.config) if args.config else config_from_environment(dict(os.environ))
    config = apply_flags(config, upstream)
    if args.extend_query_path is not None:
        queries = rename_namespaces(load_query_file(args.extend_query_path), upstream.metric_prefix)
        extended = ExtendedQueries(
            args.extend_query_path,
            queries,
            upstream.auto_discover_databases,
            file_hashsum(args.extend_query_path),
        )
        config = config.with_extended_queries(extended)
    return config, resolve_targets(config, fetch=fetch)


def aws_notes(config: ExporterConfig, secrets: CheckConfigSecrets) -> list[str]:
    """--check-config without AWS credentials: the checks that need AWS, skipped, each said once."""
    needs = []
    if config.polled_aws is not None:
        needs.append("AWS polling (rds: blocks, aws:)")
    if any(t.iam_auth is not False for t in config.targets):
        needs.append("RDS IAM auth tokens (iam_auth:)")
    notes = secrets.notes("pgwarden-exporter")
    if needs and secrets.offline:
        notes.append(
            f"note: no AWS credentials are configured; {' and '.join(needs)} need them at start-up"
            " (the AWS default chain: environment, shared files, SSO, container or instance role)"
        )
    return notes


def summary(config: ExporterConfig, targets: list[Target]) -> str:
    lines = [f"configuration OK: {len(targets)} target(s)"]
    lines += [f"  target {t.name}: {t.display}" for t in targets]
    for s in scheduled_collectors(config):
        scope = "per database" if s.collector.per_database else "server"
        lines.append(
            f"  collector {s.collector.name}: {scope}, ttl {format_duration(s.ttl)}, "
            f"timeout {format_duration(s.timeout)}"
        )
    limits = config.limits
    lines.append(
        f"  limits: statements_top_n={limits.statements_top_n} tables_per_database={limits.tables_per_database} "
        f"indexes_per_database={limits.indexes_per_database} (0 = no cap)"
    )
    aws = config.polled_aws
    if aws is not None:
        if config.aws is None:
            lines.append(f"  aws: {IMPLIED_AWS}")
        lines += aws_summary(aws, config.targets)
    return "\n".join(lines)


async def serve(
    config: ExporterConfig,
    targets: list[Target],
    host: str | None,
    port: int,
    web_config: WebConfig,
    serving: ServeOptions | None = None,
    systemd_socket: bool = False,
) -> None:
    app = web_config.apply(make_app(config, targets, serving))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site: web.BaseSite
    if systemd_socket:  # postgres_exporter's --web.systemd-socket: the socket systemd passed on
        try:
            site = web.SockSite(runner, inherited_socket(), ssl_context=web_config.ssl_context)
        except NoSocket as exc:
            await runner.cleanup()
            raise ListenError(str(exc)) from None
    else:
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=web_config.ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(f"cannot listen on {host or ''}:{port}: {exc.strerror}") from None
    address = f"{web_config.scheme}://{host or '0.0.0.0'}:{port}"
    log.info("listening", extra={"address": address, "targets": len(targets)})
    if config.aws is None and config.polled_aws is not None:
        log.info(IMPLIED_AWS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


class ListenError(Exception):
    """The listen address cannot be bound (in use, not local, no permission)."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    secrets = CheckConfigSecrets()
    try:
        upstream = read_flags(args, os.environ)
    except ConfigError as exc:
        return print_config_errors("command line", exc.errors)
    for warning in upstream.warnings:
        log.warning(warning)
    if upstream.dumpmaps:
        print(dump_maps())
        return 0
    try:
        config, targets = load(args, upstream, secrets if args.check_config else read_secret)
        serving = serve_options(upstream)
    except ConfigError as exc:
        return print_config_errors(str(args.config or "DATA_SOURCE_NAME"), exc.errors)
    try:
        web_config = load_web_config(args.web_config_file)
    except ConfigError as exc:
        return print_config_errors(str(args.web_config_file), exc.errors)
    host, port = args.listen
    if args.check_config:
        print(summary(config, targets))
        print(f"  web: {web_config.describe()}")
        for note in aws_notes(config, secrets):
            print(note)
        return 0
    try:
        asyncio.run(serve(config, targets, host, port, web_config, serving, upstream.systemd_socket))
    except ListenError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0
