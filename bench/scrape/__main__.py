"""`python -m bench.scrape`: the command line of the scrape benchmark (see bench/scrape/__init__.py)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import bench.scrape
from bench.scrape.database import PG_SETTINGS, BenchDatabase
from bench.scrape.exporters import BenchError
from bench.scrape.measure import WORK_DIR, SizeResult, measure_size
from bench.scrape.report import print_header, print_size, print_summary, say
from devtools.pgserver import PostgresServer, running_server
from devtools.processes import stop_all

DEFAULT_SIZES = (100, 2000, 10000)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """First SIGINT/SIGTERM/SIGHUP: ignore further ones and unwind, so the cleanup runs once, fully."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Unwind on a signal too; devtools.processes stops every child at exit."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)


def run_benchmark(
    settings: Mapping[str, str], body: Callable[[PostgresServer], None], work_dir: Path | None = None
) -> int:
    """Run `body` on a fresh server, unwinding on a signal; stop every child after: 0, or 1 on a BenchError."""
    install_cleanup()
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    try:
        with running_server(settings=settings) as server:
            body(server)
    except BenchError as exc:
        say(f"\nbenchmark stopped: {exc}")
        return 1
    finally:
        stop_all()
    return 0


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give table counts >= 1, comma-separated")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=bench.scrape.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="table counts, comma-separated (default: 100,2000,10000)",
    )
    parser.add_argument("--scrapes", type=int, default=7, help="measured scrapes per exporter (default: 7)")
    parser.add_argument("--warmups", type=int, default=1, help="warm-up scrapes per exporter (default: 1)")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.2,
        help="seconds between two scrapes, before waiting for the exporters to be idle (default: 0.2)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.scrapes <= 100 or not 1 <= args.warmups <= 10 or not 0 <= args.gap <= 60:
        parser.error("--scrapes 1..100, --warmups 1..10, --gap 0..60")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[SizeResult] = []

    def body(server: PostgresServer) -> None:
        print_header(server, args)
        db = BenchDatabase(server)
        db.create()
        for tables in args.sizes:
            results.append(measure_size(server, db, tables, args))
            print_size(results[-1])

    try:
        return run_benchmark(PG_SETTINGS, body, WORK_DIR)
    finally:
        if results:
            print_summary(results)


if __name__ == "__main__":
    raise SystemExit(main())
