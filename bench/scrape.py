"""Scrape benchmark: pgwarden-exporter against Debian's postgres_exporter 0.11, in the same run.

It starts a throwaway PostgreSQL 15 on 127.0.0.1 and grows one database in it through the sizes (100, 2,000
and 10,000 tables by default, 3 indexes each, all in that ONE database, plus ~5,000 pg_stat_statements
entries made afresh for each size); at each size it runs three exporters against it:

- postgres_exporter 0.11.1 with bench/postgres_exporter_queries.yaml (user tables with sizes, statio tables,
  user indexes with sizes and statements), so that both export comparable per-table, per-index and
  per-statement series;
- pgwarden with every collector refreshed on each scrape (TTL 0) and no cardinality caps;
- pgwarden with its default configuration (built-in TTL caches and caps), measured warm: after a first
  scrape has filled its caches.

It scrapes them alternately, scrape by scrape (each once the exporters are idle), over HTTP without
compression, and prints per exporter the median and min-max wall-clock scrape time, the series count, the
exposition size and the RSS (VmRSS, and the peak VmHWM) of its process; the series per family prefix; whether
every scrape was complete (pg_up, collector success, cache use) and the last exposition valid; the metric
names only one of them has; and the ratios against the targets: TTL-0 scrape median <= 0.5x, warm default
scrape median <= 0.1x and peak RSS <= 0.5x postgres_exporter's (for each pgwarden configuration). It also
measures how much CPU other processes used meanwhile, and warns when that disturbed the timings. Nothing
here asserts on time: it reports.

Run from the repository root (about 4 minutes for all three sizes on 2 cores):

    .venv/bin/python -m bench.scrape           # or: make bench, or: .venv/bin/python bench/scrape.py
    .venv/bin/python -m bench.scrape --sizes 100,2000 --scrapes 3

Every process it starts (PostgreSQL and the exporters) is stopped on exit, Ctrl-C and errors included.
Logs, configurations and each exporter's last exposition go to .bench/scrape/<tables>/.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as `python bench/scrape.py`
    sys.path.insert(0, str(REPO_ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402

from devtools.pgserver import PostgresServer, free_port, running_server  # noqa: E402

POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
QUERIES_FILE = Path(__file__).resolve().parent / "postgres_exporter_queries.yaml"
WORK_DIR = REPO_ROOT / ".bench" / "scrape"

DB_NAME = "bench"
MONITOR_ROLE = "pgwarden_bench"
MONITOR_PASSWORD = "bench-monitor-pw"
STATEMENTS = 5000
DEFAULT_SIZES = (100, 2000, 10000)
TABLE_BATCH = 250

# postgres_exporter's size query locks every table, TOAST table and index in one statement (60,000 locks at
# 10,000 tables); the shared lock table holds max_locks_per_transaction * max_connections of them.
# pg_stat_statements.track = top (PostgreSQL's default): with `all`, a query also run nested (e.g. inside
# COPY) gets a second row with the same queryid, and postgres_exporter 0.11 fails the whole scrape with
# "collected metric ... was collected before with the same name and label values".
PG_SETTINGS = {
    "max_locks_per_transaction": "4096",
    "max_connections": "50",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "top",
    "autovacuum": "off",
}

PE_LABEL = "postgres_exporter 0.11.1"
TTL0_LABEL = "pgwarden (TTL 0, no caps)"
WARM_LABEL = "pgwarden (defaults, warm)"

PREFIXES: tuple[tuple[str, ...], ...] = (
    ("pg_stat_user_tables_",),
    ("pg_statio_user_tables_",),
    ("pg_stat_user_indexes_", "pg_index_"),
    ("pg_stat_statements_",),
)

# pgwarden's built-in TTLs for its per-table, per-index and size collectors are 60 s: the warm scrapes are
# measured within 45 s of the scrape that filled the caches (the data-age metric confirms they were cached).
REWARM_AFTER = 45.0
READY_TIMEOUT = 60.0
SCRAPE_TIMEOUT = 300.0
STOP_GRACE = 5.0
# Before each scrape, wait (at most QUIET_LIMIT s) until no exporter used CPU for QUIET_WINDOW s.
QUIET_WINDOW = 0.25
QUIET_LIMIT = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FOREIGN_CPU_WARNING = 0.1  # cores used by other processes during the scrapes that earn a warning


class BenchError(RuntimeError):
    """The benchmark cannot go on (an exporter died, did not listen, or answered with an error)."""


def say(text: str = "") -> None:
    print(text, flush=True)


# --- child processes: every one is killed on exit -----------------------------------------------------------

_children: list[subprocess.Popen[bytes]] = []


def spawn(argv: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session (so its whole group can be killed), output to `log_path`."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children.append(proc)
    return proc


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_GRACE)
    if proc in _children:
        _children.remove(proc)


def stop_children() -> None:
    for proc in list(_children):
        terminate(proc)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """First SIGINT/SIGTERM/SIGHUP: ignore further ones and unwind, so the cleanup runs once, fully."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    atexit.register(stop_children)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)


def proc_stats() -> Iterator[list[str]]:
    """For every process: its pid, then the /proc/PID/stat fields after the command name (state, ppid,
    pgrp, session, ..., utime at index 12, stime at 13)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 12:
            yield [entry.name, *fields]


def session_stats(sid: int) -> list[list[str]]:
    return [fields for fields in proc_stats() if fields[4] == str(sid)]


def cpu_ticks(fields: list[str]) -> int:
    return int(fields[12]) + int(fields[13])


def session_memory_kb(sid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB summed over the processes of session `sid` (the exporter and any child)."""
    rss = hwm = 0
    for fields in session_stats(sid):
        try:
            status = Path(f"/proc/{fields[0]}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


def session_cpu_ticks(sid: int) -> int:
    """User + system CPU time, in clock ticks, of the processes of session `sid`."""
    return sum(cpu_ticks(fields) for fields in session_stats(sid))


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.datadir / "postmaster.pid").read_text().split()[0])


def machine_busy_ticks() -> int:
    """CPU time used on the machine (user, nice, system, irq, softirq), in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return user + nice + system + irq + softirq


class CpuWatch:
    """How much CPU processes other than the benchmark's own (this one, the exporters, PostgreSQL) use."""

    def __init__(self, sids: Sequence[int], postmaster: int) -> None:
        self.sids = {str(sid) for sid in sids}
        self.postmaster = str(postmaster)
        self.started = time.monotonic()
        self.machine = machine_busy_ticks()
        self.own = self.own_ticks()

    def own_ticks(self) -> int:
        me = os.times()
        ticks = round((me.user + me.system) * CLOCK_TICKS)
        for fields in proc_stats():
            if fields[4] in self.sids or self.postmaster in (fields[0], fields[2]):
                ticks += cpu_ticks(fields)
        return ticks

    def foreign_cores(self) -> float:
        """Average number of cores the other processes kept busy since the watch started."""
        elapsed = time.monotonic() - self.started
        foreign = (machine_busy_ticks() - self.machine) - (self.own_ticks() - self.own)
        return max(0.0, foreign / CLOCK_TICKS / max(elapsed, 1e-9))


def wait_quiet(sids: Sequence[int], window: float = QUIET_WINDOW, limit: float = QUIET_LIMIT) -> bool:
    """Wait (at most `limit` s) until the exporters use no CPU for `window` s, so that a scrape never
    overlaps the aftermath of the previous one (garbage collection, freeing a large response) in another
    exporter. False when they did not become idle in time."""
    deadline = time.monotonic() + limit
    before = [session_cpu_ticks(sid) for sid in sids]
    while time.monotonic() < deadline:
        time.sleep(window)
        now = [session_cpu_ticks(sid) for sid in sids]
        if all(n - b <= 1 for n, b in zip(now, before, strict=True)):
            return True
        before = now
    return False


# --- exporters ----------------------------------------------------------------------------------------------


@dataclass
class Exporter:
    """One exporter process listening on 127.0.0.1:`port`."""

    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    pgwarden: bool = False
    # Measure it warm: an unmeasured scrape refills its TTL caches when the last one is older than this.
    rewarm_after: float | None = None
    proc: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        self.proc = spawn(self.argv, self.env, self.log_path)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"{self.label} is not running (exit code {code}); log:\n{self.log_tail()}")

    def wait_ready(self, deadline: float) -> None:
        """Wait until the port accepts connections."""
        while True:
            self.check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{self.label} did not listen on port {self.port}; log:\n{self.log_tail()}")
            time.sleep(0.1)

    def scrape(self) -> tuple[float, bytes]:
        """One GET /metrics, uncompressed: (wall-clock seconds, body)."""
        self.check_alive()
        started = time.perf_counter()
        try:
            with self.http.get(
                self.url, headers={"Accept-Encoding": "identity"}, timeout=(5, SCRAPE_TIMEOUT), stream=True
            ) as response:
                body = b"".join(response.iter_content(1 << 20))
        except requests.RequestException as exc:
            raise BenchError(f"{self.label}: scrape failed: {exc}; log:\n{self.log_tail()}") from exc
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise BenchError(f"{self.label}: HTTP {response.status_code}: {body[:300]!r}")
        return elapsed, body

    @property
    def pid(self) -> int:
        self.check_alive()
        assert self.proc is not None
        return self.proc.pid

    def memory_kb(self) -> tuple[int, int]:
        return session_memory_kb(self.pid)

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None:
            terminate(self.proc)


def exporter_dsn(server: PostgresServer) -> str:
    # lib/pq (postgres_exporter) defaults to sslmode=require; the throwaway server has no TLS.
    return server.dsn(DB_NAME, MONITOR_ROLE, MONITOR_PASSWORD) + "?sslmode=disable"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_SOURCE_", "PG"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def postgres_exporter(server: PostgresServer, workdir: Path) -> Exporter:
    port = free_port()
    argv = [
        POSTGRES_EXPORTER,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--extend.query-path={QUERIES_FILE}",
        "--log.level=warn",
    ]
    env = base_env() | {"DATA_SOURCE_NAME": exporter_dsn(server)}
    return Exporter(PE_LABEL, argv, env, port, workdir / "postgres_exporter.log")


def ttl0_config(dsn: str) -> dict[str, Any]:
    return {
        "targets": [{"name": "bench", "dsn": dsn}],
        "collectors": {"defaults": {"timeout": "60s", "ttl": "0s"}},
        "limits": {"statements_top_n": 0, "tables_per_database": 0, "indexes_per_database": 0},
    }


def default_config(dsn: str) -> dict[str, Any]:
    return {"targets": [{"name": "bench", "dsn": dsn}]}


def pgwarden(label: str, config: dict[str, Any], workdir: Path, slug: str) -> Exporter:
    config_path = workdir / f"{slug}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    # The interpreter itself, not a console-script wrapper: its pid is the process whose RSS we read.
    argv = [
        sys.executable,
        "-m",
        "exporter",
        "--config",
        str(config_path),
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    return Exporter(label, argv, base_env(), port, workdir / f"{slug}.log", pgwarden=True)


@contextlib.contextmanager
def started(exporters: Sequence[Exporter]) -> Iterator[None]:
    """All exporters running and listening for the duration of the block; stopped afterwards."""
    try:
        for exp in exporters:
            exp.start()
        deadline = time.monotonic() + READY_TIMEOUT
        for exp in exporters:
            exp.wait_ready(deadline)
        yield
    finally:
        for exp in exporters:
            exp.stop()


# --- the database -------------------------------------------------------------------------------------------

CREATE_BATCH_SQL = """
DO $$
DECLARE
  t text;
  n bigint;
BEGIN
  FOR i IN {lo}..{hi} LOOP
    t := 't_' || i;
    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, a int, b text)', t);
    EXECUTE format('CREATE INDEX %I ON %I (a)', t || '_a', t);
    EXECUTE format('CREATE INDEX %I ON %I (b)', t || '_b', t);
    EXECUTE format('INSERT INTO %I SELECT g, g, md5(g::text) FROM generate_series(1, 5) g', t);
    EXECUTE format('UPDATE %I SET a = a + 1 WHERE id = 1', t);
    EXECUTE format('DELETE FROM %I WHERE id = 5', t);
    EXECUTE format('ANALYZE %I', t);
    EXECUTE format('SELECT count(*) FROM %I', t) INTO n;
  END LOOP;
  -- one bitmap scan over all three indexes of each table, so every idx_scan counter is non-zero
  PERFORM set_config('enable_seqscan', 'off', true);
  FOR i IN {lo}..{hi} LOOP
    EXECUTE format('SELECT count(*) FROM %I WHERE id = 2 OR a = 3 OR b = md5(''4'')', 't_' || i) INTO n;
  END LOOP;
END $$
"""


class BenchDatabase:
    """The `bench` database: tables t_0..t_{n-1} (3 indexes, 4 rows each) and ~5,000 statements."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.tables = 0

    def create(self) -> None:
        self.server.execute(f"CREATE DATABASE {DB_NAME}")
        self.server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", DB_NAME)
        self.server.execute(
            f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(DB_NAME), autocommit=True)

    def grow_to(self, tables: int) -> None:
        """Add tables (with rows, an update, a delete, ANALYZE and scans) until there are `tables`."""
        with self._connect() as conn:
            conn.execute(b"SET pg_stat_statements.track = 'none'")
            for lo in range(self.tables, tables, TABLE_BATCH):
                hi = min(lo + TABLE_BATCH, tables) - 1
                conn.execute(CREATE_BATCH_SQL.format(lo=lo, hi=hi).encode())
        self.tables = max(self.tables, tables)

    def make_statements(self, count: int) -> None:
        """Reset pg_stat_statements, then run `count` distinct statement shapes once each.

        Statement k reads table k mod n with an IN list of k div n + 1 parameters: a different table or a
        different list length gives a different queryid (PostgreSQL 15 does not merge IN lists).
        """
        with self._connect() as conn:
            conn.execute(b"SELECT pg_stat_statements_reset()")
            with conn.pipeline():
                for k in range(count):
                    width = k // self.tables + 1
                    sql = f"SELECT a FROM t_{k % self.tables} WHERE id IN ({', '.join(['%s'] * width)})"
                    conn.execute(sql.encode(), list(range(1, width + 1)))

    def statement_count(self) -> int:
        return int(self.server.execute("SELECT count(*) FROM pg_stat_statements", DB_NAME)[0][0])

    def index_count(self) -> int:
        return int(self.server.execute("SELECT count(*) FROM pg_stat_user_indexes", DB_NAME)[0][0])


def extended_queries() -> list[str]:
    data = yaml.safe_load(QUERIES_FILE.read_text())
    return [str(spec["query"]) for spec in data.values()]


def sql_seconds(dsn: str, queries: Sequence[str], repeats: int = 3) -> float:
    """Median time to run the extended queries and move their rows (COPY: no client-side decoding)."""
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for _ in range(repeats):
            started_at = time.perf_counter()
            for query in queries:
                with cur.copy(f"COPY ({query.strip()}) TO STDOUT".encode()) as copy:
                    for _chunk in copy:
                        pass
            times.append(time.perf_counter() - started_at)
    return statistics.median(times)


# --- exposition analysis ------------------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(rf"({_NAME})(?:\{{(?:{_LABEL}(?:,{_LABEL})*,?)?\}})? (\S+)(?: -?[0-9]+)?")
VALUE_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|NaN)")
METRIC_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = ("_bucket", "_sum", "_count", "_created")
MAX_EXAMPLES = 4
RUNTIME_PREFIXES = ("go_", "process_", "promhttp_", "python_")


@dataclass
class ExpositionReport:
    """What one exposition holds, and what is wrong with it."""

    series: int = 0
    size: int = 0
    names: dict[str, int] = field(default_factory=dict)  # series per metric name
    problems: int = 0
    examples: list[str] = field(default_factory=list)

    def problem(self, what: str, line: str) -> None:
        self.problems += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{what}: {line[:150]}")

    def by_prefix(self, prefixes: Sequence[str]) -> int:
        return sum(n for name, n in self.names.items() if name.startswith(tuple(prefixes)))


class _FamilyTracker:
    """Checks the text format's family rules: one TYPE per family, each family's lines contiguous."""

    def __init__(self, report: ExpositionReport) -> None:
        self.report = report
        self.types: dict[str, str] = {}
        self.closed: set[str] = set()
        self.current = ""

    def comment(self, line: str) -> None:
        parts = line.split(" ", 3)
        if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
            return
        name = parts[2]
        if parts[1] == "TYPE":
            if name in self.types:
                self.report.problem("second TYPE line", line)
            self.types[name] = parts[3] if len(parts) > 3 else ""
            if self.types[name] not in METRIC_TYPES:
                self.report.problem("unknown type", line)
        self.enter(name, line)

    def family_of(self, name: str) -> str:
        for suffix in SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in ("histogram", "summary"):
                return base
        return name

    def enter(self, family: str, line: str) -> None:
        if family == self.current:
            return
        if family in self.closed:
            self.report.problem(f"{family} is split in two blocks", line)
        if self.current:
            self.closed.add(self.current)
        self.current = family


def analyse(body: bytes) -> ExpositionReport:
    """Series count, bytes, series per name; invalid lines, duplicate series and family-rule breaches."""
    report = ExpositionReport(size=len(body))
    families = _FamilyTracker(report)
    seen: set[str] = set()
    names = report.names
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        report.problem("not UTF-8", str(exc))
        text = body.decode(errors="replace")
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("#"):
            families.comment(line)
            continue
        report.series += 1
        match = SAMPLE_RE.fullmatch(line)
        if match is None or not VALUE_RE.fullmatch(match.group(2)):
            report.problem("invalid line", line)
            continue
        name = match.group(1)
        names[name] = names.get(name, 0) + 1
        families.enter(families.family_of(name), line)
        key = line[: line.rfind(" ")]
        if key in seen:
            report.problem("duplicate series", line)
        seen.add(key)
    if body and not body.endswith(b"\n"):
        report.problem("no final line feed", text[-80:])
    return report


AGE_METRIC = "pg_exporter_collector_data_age_seconds"


def samples_of(body: bytes, name: str) -> list[tuple[str, str]]:
    """(labels, value) of every sample of metric `name`, found by substring search (fast on 50 MB)."""
    found = []
    needle = b"\n" + name.encode()
    pos = body.find(needle)
    while pos != -1:
        end = body.find(b"\n", pos + 1)
        rest = body[pos + len(needle) : end if end != -1 else len(body)].decode(errors="replace")
        if rest[:1] in ("{", " "):
            labels, _, value = rest.rpartition(" ")
            found.append((labels, value))
        pos = body.find(needle, pos + 1)
    return found


def collector_name(labels: str) -> str:
    match = re.search(r'collector="([^"]*)"', labels)
    return match.group(1) if match else labels


def scrape_errors(body: bytes, pgwarden: bool) -> str:
    """Why a scrape was incomplete (pg_up not 1, a failed collector or query), or "" when it was complete."""
    errors = [f"pg_up {value}" for _, value in samples_of(body, "pg_up") if value != "1"]
    if not samples_of(body, "pg_up"):
        errors.append("no pg_up")
    if pgwarden:
        failed = samples_of(body, "pg_scrape_collector_success")
        errors += [f"collector {collector_name(lbl)} failed" for lbl, value in failed if value != "1"]
    else:
        failed = samples_of(body, "pg_exporter_last_scrape_error")
        errors += [f"pg_exporter_last_scrape_error {value}" for _, value in failed if value != "0"]
        loads = samples_of(body, "pg_exporter_user_queries_load_error")
        errors += [f"queries file not loaded {lbl}" for lbl, value in loads if value != "0"]
    return ", ".join(errors)


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """The scrapes of one exporter at one size."""

    label: str
    times: list[float] = field(default_factory=list)
    first: float = 0.0  # the warm-up scrape (for pgwarden's defaults: the cold one, filling the caches)
    last_body: bytes = b""
    rss_kb: int = 0
    hwm_kb: int = 0
    report: ExpositionReport = field(default_factory=ExpositionReport)
    failed: list[str] = field(default_factory=list)  # measured scrapes reporting an error, and why
    cached: int = 0  # measured scrapes that served at least one collector from its TTL cache
    cached_collectors: set[str] = field(default_factory=set)
    rewarms: int = 0

    def check(self, body: bytes, pgwarden: bool) -> None:
        """Record whether a measured scrape was complete and which collectors it served from cache."""
        errors = scrape_errors(body, pgwarden)
        if errors:
            self.failed.append(errors)
        if pgwarden:
            ages = {labels: float(value) for labels, value in samples_of(body, AGE_METRIC)}
            cached = {collector_name(labels) for labels, age in ages.items() if age > 0}
            self.cached += bool(cached)
            self.cached_collectors |= cached

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class SizeResult:
    tables: int
    indexes: int
    statements: int
    build_seconds: float
    sql_seconds: float
    load: str
    foreign_cores: float  # CPU used by other processes on the machine during the measured scrapes
    busy_pauses: int
    pe: Measurement
    ttl0: Measurement
    warm: Measurement


class AlternatingScraper:
    """Scrapes several exporters one after the other, each once the others are idle."""

    def __init__(self, exporters: Sequence[Exporter], gap: float) -> None:
        self.exporters = exporters
        self.results = [Measurement(exp.label) for exp in exporters]
        self.filled = [0.0] * len(exporters)  # when each one's caches were last filled, unmeasured
        self.sids = [exp.pid for exp in exporters]
        self.gap = gap
        self.busy_pauses = 0  # pauses after which an exporter was still using CPU

    def pause(self) -> None:
        time.sleep(self.gap)
        if not wait_quiet(self.sids):
            self.busy_pauses += 1

    def warm_up(self, scrapes: int) -> None:
        for _ in range(scrapes):
            for i, exp in enumerate(self.exporters):
                self.pause()
                self.filled[i] = time.monotonic()
                self.results[i].first, self.results[i].last_body = exp.scrape()

    def rounds(self, scrapes: int) -> None:
        """`scrapes` rounds of one measured scrape of each exporter, the order rotating per round."""
        count = len(self.exporters)
        for round_no in range(scrapes):
            shift = round_no % count
            for i in [*range(shift, count), *range(shift)]:
                self.measure(i)

    def measure(self, i: int) -> None:
        exp, result = self.exporters[i], self.results[i]
        if exp.rewarm_after is not None and time.monotonic() - self.filled[i] > exp.rewarm_after:
            self.pause()
            self.filled[i] = time.monotonic()
            exp.scrape()
            result.rewarms += 1
        self.pause()
        elapsed, body = exp.scrape()
        result.times.append(elapsed)
        result.check(body, exp.pgwarden)
        result.last_body = body

    def finish(self) -> list[Measurement]:
        """Read each exporter's memory, analyse and save its last exposition."""
        for exp, result in zip(self.exporters, self.results, strict=True):
            result.rss_kb, result.hwm_kb = exp.memory_kb()
            result.report = analyse(result.last_body)
            exp.log_path.with_suffix(".prom").write_bytes(result.last_body)  # to look at afterwards
            result.last_body = b""
        return self.results


def measure_size(
    server: PostgresServer, db: BenchDatabase, tables: int, args: argparse.Namespace
) -> SizeResult:
    started_at = time.monotonic()
    db.grow_to(tables)
    db.make_statements(STATEMENTS)
    server.execute("CHECKPOINT")  # write the build's dirty buffers now, not during the scrapes
    build = time.monotonic() - started_at
    statements = db.statement_count()
    sql = sql_seconds(exporter_dsn(server), extended_queries())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    workdir = WORK_DIR / f"{tables}"
    workdir.mkdir(parents=True, exist_ok=True)
    dsn = exporter_dsn(server)
    exporters = [
        postgres_exporter(server, workdir),
        pgwarden(TTL0_LABEL, ttl0_config(dsn), workdir, "pgwarden-ttl0"),
        pgwarden(WARM_LABEL, default_config(dsn), workdir, "pgwarden-defaults"),
    ]
    exporters[2].rewarm_after = REWARM_AFTER
    with started(exporters):
        scraper = AlternatingScraper(exporters, args.gap)
        scraper.warm_up(args.warmups)
        watch = CpuWatch(scraper.sids, postmaster_pid(server))
        scraper.rounds(args.scrapes)
        foreign = watch.foreign_cores()
        pe, ttl0, warm = scraper.finish()
    indexes = db.index_count()
    return SizeResult(
        tables, indexes, statements, build, sql, load, foreign, scraper.busy_pauses, pe, ttl0, warm
    )


# --- reporting ----------------------------------------------------------------------------------------------


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


# --- main ---------------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give table counts >= 1, comma-separated")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    install_cleanup()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    results: list[SizeResult] = []
    try:
        with running_server(settings=PG_SETTINGS) as server:
            print_header(server, args)
            db = BenchDatabase(server)
            db.create()
            for tables in args.sizes:
                results.append(measure_size(server, db, tables, args))
                print_size(results[-1])
    except BenchError as exc:
        say(f"\nbenchmark stopped: {exc}")
        return 1
    finally:
        stop_children()
        if results:
            print_summary(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
