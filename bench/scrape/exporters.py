"""The three exporters under test, each a process of its own on 127.0.0.1, and how one is scraped."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from bench.scrape.database import QUERIES_FILE, exporter_dsn
from devtools.pgserver import PostgresServer
from devtools.processes import NotReady, Process, free_port, spawn, wait_tcp

POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
PE_LABEL = "postgres_exporter 0.11.1"
TTL0_LABEL = "pgwarden (TTL 0, no caps)"
WARM_LABEL = "pgwarden (defaults, warm)"

# pgwarden's built-in TTLs for its per-table, per-index and size collectors are 60 s: the warm scrapes are
# measured within 45 s of the scrape that filled the caches (the data-age metric confirms they were cached).
REWARM_AFTER = 45.0
READY_TIMEOUT = 60.0
SCRAPE_TIMEOUT = 300.0
STOP_GRACE = 5.0


class BenchError(RuntimeError):
    """The benchmark cannot go on (an exporter died, did not listen, or answered with an error)."""


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
    process: Process | None = None
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        self.process = spawn(self.label, self.argv, self.log_path, self.env)

    def running(self) -> Process:
        if self.process is None or not self.process.running():
            code = None if self.process is None else self.process.popen.returncode
            tail = "" if self.process is None else self.process.log_tail(15)
            raise BenchError(f"{self.label} is not running (exit code {code}); log:\n{tail}")
        return self.process

    def wait_ready(self, deadline: float) -> None:
        """Wait until the port accepts connections."""
        try:
            wait_tcp(self.running(), self.port, max(0.0, deadline - time.monotonic()))
        except NotReady as exc:
            raise BenchError(str(exc)) from None

    def scrape(self) -> tuple[float, bytes]:
        """One GET /metrics, uncompressed: (wall-clock seconds, body)."""
        process = self.running()
        started = time.perf_counter()
        try:
            with self.http.get(
                self.url, headers={"Accept-Encoding": "identity"}, timeout=(5, SCRAPE_TIMEOUT), stream=True
            ) as response:
                body = b"".join(response.iter_content(1 << 20))
        except requests.RequestException as exc:
            raise BenchError(f"{self.label}: scrape failed: {exc}; log:\n{process.log_tail(15)}") from exc
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise BenchError(f"{self.label}: HTTP {response.status_code}: {body[:300]!r}")
        return elapsed, body

    @property
    def pid(self) -> int:
        """The process's pid, which is also its session id."""
        return self.running().pid

    def stop(self) -> None:
        self.http.close()
        if self.process is not None:
            self.process.stop(STOP_GRACE)


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
