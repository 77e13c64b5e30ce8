"""Command-line plumbing both programs share: the common flags, listen addresses, config error output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

# Prometheus' own exporters spell it `warn`; Python's logging spells it `warning`. Both are accepted.
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
LOG_FORMATS = ("logfmt", "json")


def parse_listen_address(text: str) -> tuple[str | None, int]:
    """(host, port) from HOST:PORT or :PORT; host None means every interface. Raises ArgumentTypeError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"invalid listen address {text!r}: use HOST:PORT or :PORT (port 1-65535)"
        )
    return (host.strip("[]") or None), int(port)


def log_level(text: str) -> str:
    """A --log.level value as Python's logging names it (`warn` becomes `warning`)."""
    value = text.strip().lower()
    if value not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"invalid log level {text!r}: use one of {', '.join(LOG_LEVELS)}")
    return "warning" if value == "warn" else value


def add_common_flags(parser: argparse.ArgumentParser, *, program: str, version: str, listen: str) -> None:
    """--web.listen-address, --web.config.file, --log.level, --log.format, --check-config and --version."""
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        type=parse_listen_address,
        default=parse_listen_address(listen),
        metavar="HOST:PORT",
        help=f"address to listen on (default {listen})",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        type=log_level,
        default="info",
        metavar="LEVEL",
        help=f"one of {', '.join(LOG_LEVELS)} (default info)",
    )
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=LOG_FORMATS)
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="FILE",
        help="TLS, basic auth and response headers, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration, print a summary and exit"
    )
    parser.add_argument("--version", action="version", version=f"{program} {version}")


def print_config_errors(source: str, errors: Sequence[str], stream: TextIO | None = None) -> int:
    """Print every configuration error under a header naming where it came from; returns exit code 2."""
    out = stream if stream is not None else sys.stderr
    print(f"{source}: configuration invalid, {len(errors)} error(s):", file=out)
    for line in errors:
        print(f"  {line}", file=out)
    return 2
