"""How long `pgwarden-responder report --period weekly` takes on a Prometheus holding 7 days of one server.

The 7 days are generated, not waited for: OpenMetrics with the series one exporter serves for one server
(statements, tables, indexes, bloat, activity, settings and the RDS instance's CloudWatch series, with daily
patterns), one file per 2-hour block (promtool rereads its whole input for every block), turned into TSDB blocks
by `promtool tsdb create-blocks-from openmetrics`; a real Prometheus then serves those blocks and the report
command is timed against it (wall clock, median of the runs).

    .venv/bin/python bench/report.py [--interval 60] [--runs 3] [--statements 50] [--tables 30]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.processes import NotReady, free_port, spawn, wait_http

DAY = 86400
TARGET = 'target="bench"'
RDS = 'aws_account_id="123456789012",aws_region="us-east-1",dbidentifier="bench-db"'


def _daily(t: float, low: float, high: float, rng: random.Random) -> float:
    """A day-shaped value: busy in the afternoon, quiet at night, with noise."""
    phase = math.sin((t % DAY) / DAY * 2 * math.pi - math.pi / 2)
    return low + (high - low) * (0.5 + 0.5 * phase) * (0.9 + 0.2 * rng.random())


Family = tuple[str, str, list[tuple[str, Callable[[float], float]]]]


def families(args: argparse.Namespace, start: int, end: int) -> Iterator[Family]:
    """(name, type, [(labels, value-of-time)]): every series of the generated server."""
    rng = random.Random(42)
    statements = [f'{TARGET},datname="shop",user="app",queryid="{1000 + i}"' for i in range(args.statements)]
    table = f'{TARGET},datname="shop",schemaname="public",relname="t{{}}"'
    tables = [table.format(i) for i in range(args.tables)]
    indexes = [f'{table.format(i)},indexrelname="t{i}_idx{j}"' for i in range(args.tables) for j in range(2)]
    means = {s: 0.001 * (1.5 ** (i % 12)) for i, s in enumerate(statements)}
    yield (
        "pg_stat_statements_mean_seconds",
        "gauge",
        [(s, lambda t, m=m: m * (1.8 if t > end - DAY else 1.0)) for s, m in means.items()],
    )
    yield (
        "pg_stat_statements_seconds",
        "counter",
        [(s, lambda t, m=m: m * (t - start) / 10) for s, m in means.items()],
    )
    yield "pg_stat_statements_calls", "counter", [(s, lambda t: (t - start) / 10) for s in statements]
    yield (
        "pg_stat_statements_query_info",
        "gauge",
        [(f'{s},query="SELECT {i} FROM t WHERE id = $1"', lambda t: 1) for i, s in enumerate(statements)],
    )
    yield (
        "pg_stat_user_tables_seq_scan",
        "gauge",  # a counter without _total (postgres_exporter's name)
        [(t, lambda x, i=i: (x - start) / (60 if i % 5 == 0 else 6000)) for i, t in enumerate(tables)],
    )
    yield (
        "pg_stat_user_tables_idx_scan",
        "gauge",  # a counter without _total (postgres_exporter's name)
        [(t, lambda x, i=i: (x - start) / (6000 if i % 5 == 0 else 6)) for i, t in enumerate(tables)],
    )
    yield "pg_stat_user_tables_seq_tup_read", "gauge", [(t, lambda x: (x - start) * 100) for t in tables]
    yield "pg_stat_user_tables_n_live_tup", "gauge", [(t, lambda x: 1e6) for t in tables]
    yield (
        "pg_stat_user_tables_n_dead_tup",
        "gauge",
        [(t, lambda x, i=i: 1e4 * (1 + (x - start) / DAY * (i % 3))) for i, t in enumerate(tables)],
    )
    yield "pg_stat_user_tables_last_autovacuum", "gauge", [(t, lambda x: x - x % DAY) for t in tables]
    yield (
        "pg_table_bloat_bytes",
        "gauge",
        [(t, lambda x, i=i: 2**20 * (10 + i) * (1 + (x - start) / (7 * DAY))) for i, t in enumerate(tables)],
    )
    yield "pg_table_bloat_ratio", "gauge", [(t, lambda x, i=i: 0.02 * (i % 20)) for i, t in enumerate(tables)]
    yield (
        "pg_index_unused",
        "gauge",
        [(ix, lambda x, i=i: 1 if i % 7 == 0 else 0) for i, ix in enumerate(indexes)],
    )
    yield (
        "pg_index_size_bytes",
        "gauge",
        [(ix, lambda x, i=i: 2**20 * (1 + i)) for i, ix in enumerate(indexes)],
    )
    states = ("active", "idle", "idle in transaction")
    yield (
        "pg_stat_activity_count",
        "gauge",
        [
            (
                f'{TARGET},datname="shop",state="{s}"',
                lambda x, s=s: _daily(x, 1, 40 if s == "idle" else 8, rng),
            )
            for s in states
        ],
    )
    yield "pg_settings_max_connections", "gauge", [(TARGET, lambda x: 200)]
    yield "pg_static", "gauge", [(f'{TARGET},version="PostgreSQL 15.4",short_version="15.4.0"', lambda x: 1)]
    yield "rds_cpu_usage_percent_average", "gauge", [(RDS, lambda x: _daily(x, 10, 65, rng))]
    yield "rds_freeable_memory_bytes", "gauge", [(RDS, lambda x: _daily(x, 2e9, 6e9, rng))]
    yield "rds_database_connections_average", "gauge", [(RDS, lambda x: _daily(x, 5, 50, rng))]
    yield (
        "rds_instance_info",
        "gauge",
        [(f'{RDS},instance_class="db.r6g.large",engine="postgres",engine_version="15.4"', lambda x: 1)],
    )


BLOCK = 2 * 3600  # promtool writes one block per 2 hours and rereads its input for each: one file per block


def write_openmetrics(
    out: TextIO, args: argparse.Namespace, start: int, end: int, origin: int, last: int
) -> int:
    """The samples of [start, end) as one OpenMetrics file, of the week [origin, last)."""
    samples = 0
    for name, kind, series in families(args, origin, last):
        out.write(f"# TYPE {name} {kind}\n")
        suffix = "_total" if kind == "counter" else ""
        for labels, value in series:
            lines = [
                f"{name}{suffix}{{{labels}}} {value(t):.6g} {t}\n" for t in range(start, end, args.interval)
            ]
            out.writelines(lines)
            samples += len(lines)
    out.write("# EOF\n")
    return samples


def create_blocks(workdir: Path, args: argparse.Namespace, origin: int, end: int) -> tuple[int, Path]:
    data = workdir / "data"
    samples = 0
    window = origin - origin % BLOCK
    while window < end:
        chunk = workdir / "chunk.om"
        first = max(origin, window)
        first += (origin - first) % args.interval  # stay on the sampling grid
        with chunk.open("w") as out:
            samples += write_openmetrics(out, args, first, min(end, window + BLOCK), origin, end)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(chunk), str(data)], check=True
        )
        window += BLOCK
    return samples, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=60, help="seconds between generated samples")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--statements", type=int, default=50)
    parser.add_argument("--tables", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pgwarden-bench-report-"))
    prometheus = None
    try:
        end = int(time.time()) // 60 * 60
        start = end - 7 * DAY - 3600
        begun = time.monotonic()
        samples, data = create_blocks(workdir, args, start, end)
        blocks = time.monotonic() - begun
        (workdir / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
        port = free_port()
        prometheus = spawn(
            "prometheus",
            ["prometheus", f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
             "--storage.tsdb.retention.time=30d", f"--web.listen-address=127.0.0.1:{port}"],
            workdir / "prometheus.log",
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(prometheus, f"{url}/-/ready", timeout=120)
        except NotReady as exc:
            raise SystemExit(f"prometheus did not become ready: {exc}") from None
        timings = []
        for run in range(args.runs):
            html = workdir / f"weekly-{run}.html"
            begun = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "responder", "report", "--period", "weekly", "--prometheus", url,
                 "--out", str(html), "--end", str(end)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            timings.append(time.monotonic() - begun)
        summary = (workdir / "weekly-0.md").read_text()
        print(f"7 days of one server: {samples:,} samples at {args.interval}s ({args.statements} statements,"
              f" {args.tables} tables), written and turned into blocks by promtool in {blocks:.1f}s")  # fmt: skip
        print(
            f"pgwarden-responder report --period weekly: median {statistics.median(timings):.2f}s"
            f" over {args.runs} runs ({', '.join(f'{t:.2f}' for t in timings)}), process start included"
        )
        print(summary)
    finally:
        if prometheus is not None:
            prometheus.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
