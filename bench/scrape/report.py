"""The benchmark's report: per size the timings, series, memory, checks and ratios; then a summary."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from bench.scrape.database import DB_NAME, MONITOR_ROLE, PG_SETTINGS, QUERIES_FILE
from bench.scrape.exporters import POSTGRES_EXPORTER
from bench.scrape.exposition import RUNTIME_PREFIXES
from bench.scrape.measure import SizeResult
from bench.scrape.procstat import QUIET_LIMIT, QUIET_WINDOW
from devtools.pgserver import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIXES: tuple[tuple[str, ...], ...] = (
    ("pg_stat_user_tables_",),
    ("pg_statio_user_tables_",),
    ("pg_stat_user_indexes_", "pg_index_"),
    ("pg_stat_statements_",),
)
FOREIGN_CPU_WARNING = 0.1  # cores used by other processes during the scrapes that earn a warning


def say(text: str = "") -> None:
    print(text, flush=True)


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def ratios(result: SizeResult) -> list[tuple[str, float, float]]:
    """(what, ratio, target) for the three targets, the RSS one for each pgwarden configuration."""
    pe = result.pe
    pe_hwm = max(pe.hwm_kb, 1)
    return [
        ("scrape median, TTL 0 no caps / postgres_exporter", result.ttl0.median / pe.median, 0.5),
        ("warm scrape median, defaults / postgres_exporter", result.warm.median / pe.median, 0.1),
        ("peak RSS, TTL 0 no caps / postgres_exporter", result.ttl0.hwm_kb / pe_hwm, 0.5),
        ("peak RSS, defaults / postgres_exporter", result.warm.hwm_kb / pe_hwm, 0.5),
    ]


def print_size(result: SizeResult) -> None:
    say()
    say(
        f"== {result.tables:,} tables, {result.indexes:,} indexes, {result.statements:,} pg_stat_statements "
        f"entries (built in {result.build_seconds:.1f} s) =="
    )
    say(f"machine load average before the scrapes (1, 5, 15 min): {result.load}")
    foreign = f"other processes used {result.foreign_cores:.2f} cores during the measured scrapes"
    if result.foreign_cores > FOREIGN_CPU_WARNING:
        foreign += f" (of {len(os.sched_getaffinity(0))}): WARNING, the timings are disturbed"
    say(foreign)
    if result.busy_pauses:
        say(
            f"WARNING: {result.busy_pauses} scrapes started while an exporter was still busy "
            f"after {QUIET_LIMIT} s"
        )
    say(f"SQL of the extended queries alone (COPY, one connection, median of 3): {result.sql_seconds:.3f} s")
    say(
        f"{'exporter':<27} {'median s':>9} {'min-max s':>15} {'series':>9} {'bytes':>12} "
        f"{'RSS MB (peak)':>16}"
    )
    for m in (result.pe, result.ttl0, result.warm):
        spread = f"{min(m.times):.3f}-{max(m.times):.3f}"
        memory = f"{mb(m.rss_kb)} ({mb(m.hwm_kb)})"
        say(
            f"{m.label:<27} {m.median:>9.3f} {spread:>15} {m.report.series:>9,} {m.report.size:>12,} "
            f"{memory:>16}"
        )
    for m in (result.pe, result.ttl0, result.warm):
        say(f"  {m.label:<25} scrapes in order: {' '.join(f'{t:.3f}' for t in m.times)}")
    say(
        f"  (pgwarden defaults: first, cold scrape {result.warm.first:.3f} s; "
        "the later ones are served from its caches)"
    )
    print_prefixes(result)
    say("ratios (same run)")
    for what, ratio, target in ratios(result):
        say(f"  {what:<50} {ratio:>6.3f}x  target <= {target}x  {verdict(ratio, target)}")
    print_checks(result)


def print_prefixes(result: SizeResult) -> None:
    heads = ["|".join(p) for p in PREFIXES]
    say(f"{'series by prefix':<29}" + "".join(f" {h:>{max(len(h), 10)}}" for h in heads))
    for m in (result.pe, result.ttl0, result.warm):
        counts = [m.report.by_prefix(p) for p in PREFIXES]
        cells = "".join(f" {c:>{max(len(h), 10)},}" for c, h in zip(counts, heads, strict=True))
        say(f"  {m.label:<27}{cells}")


def print_checks(result: SizeResult) -> None:
    say("checks (measured scrapes; last exposition of each parsed in full)")
    for m in (result.pe, result.ttl0, result.warm):
        health = f"{len(m.times) - len(m.failed)}/{len(m.times)} complete"
        if m.failed:
            health += f" (e.g. {m.failed[0][:120]})"
        if m is result.ttl0:
            health += f", {len(m.times) - m.cached}/{len(m.times)} refreshed every collector"
        elif m is result.warm:
            cached = ", ".join(sorted(m.cached_collectors)) or "none"
            health += f", {m.cached}/{len(m.times)} served from cache ({cached}), {m.rewarms} re-warm scrapes"
        problems = "valid" if m.report.problems == 0 else f"{m.report.problems:,} problems"
        say(f"  {m.label:<27} {health}; exposition {problems}")
        for example in m.report.examples:
            say(f"      {example}")
    pe_names = {n for n in result.pe.report.names if not n.startswith(RUNTIME_PREFIXES)}
    pw_names = {n for n in result.ttl0.report.names if not n.startswith(RUNTIME_PREFIXES)}
    print_names("  metric names only in postgres_exporter", sorted(pe_names - pw_names))
    print_names("  metric names only in pgwarden", sorted(pw_names - pe_names))


def print_names(title: str, names: list[str]) -> None:
    say(f"{title} ({len(names)}): {', '.join(names) or '-'}")


def print_summary(results: Sequence[SizeResult]) -> None:
    say()
    say("== summary: ratios against postgres_exporter in the same run ==")
    heads = ["TTL 0 / pe <= 0.5", "warm / pe <= 0.1", "RSS TTL 0 / pe <= 0.5", "RSS dflt / pe <= 0.5"]
    say(f"{'tables':>7} {'pe median s':>12} " + " ".join(f"{h:>21}" for h in heads))
    for result in results:
        cells = [f"{ratio:.3f}x {verdict(ratio, target)}" for _, ratio, target in ratios(result)]
        say(f"{result.tables:>7,} {result.pe.median:>12.3f} " + " ".join(f"{c:>21}" for c in cells))
    say(
        "(the issue's reference at 10,000 tables on this kind of machine: postgres_exporter 2.2 s, "
        "516k series, 546 MB RSS; the SQL it needs 0.47 s)"
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else f"exit code {out.returncode}"


def pgwarden_version() -> str:
    try:
        import exporter
    except ImportError as exc:
        return f"not importable ({exc})"
    return str(getattr(exporter, "__version__", "unknown"))


def print_header(server: PostgresServer, args: argparse.Namespace) -> None:
    say(f"pgwarden scrape benchmark, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    say(
        f"machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"{platform.system()} {platform.release()}"
    )
    say(
        f"versions: Python {platform.python_version()}, "
        f"PostgreSQL {server.execute('SHOW server_version')[0][0]}, "
        f"{tool_version([POSTGRES_EXPORTER, '--version'])}, pgwarden-exporter {pgwarden_version()}, "
        f"psycopg {psycopg.__version__}"
    )
    settings = ", ".join(f"{k}={v}" for k, v in PG_SETTINGS.items())
    say(f"server: throwaway PostgreSQL on 127.0.0.1 with {settings}")
    say(
        "  max_locks_per_transaction is raised because postgres_exporter's size query locks every table, "
        "TOAST table and index in one statement; pg_stat_statements.track=top as by default (with `all` "
        "postgres_exporter fails on nested duplicates of a queryid); autovacuum is off to keep the runs quiet"
    )
    say(
        f"  all tables are in ONE database, {DB_NAME!r}, named in both DSNs (postgres_exporter's extended "
        f"queries only see the DSN's database); both exporters connect as {MONITOR_ROLE}, a pg_monitor member"
    )
    say(f"  postgres_exporter extended queries: {QUERIES_FILE.relative_to(REPO_ROOT)}")
    say(
        f"scrapes: {args.warmups} warm-up + {args.scrapes} measured per exporter, alternating, "
        f"each after a {args.gap} s pause and once the exporters are idle (no CPU for {QUIET_WINDOW} s), "
        "GET /metrics with Accept-Encoding: identity"
    )
