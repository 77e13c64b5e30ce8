"""The custom-query tests' databases, and Debian's postgres_exporter run beside the exporter."""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import free_port, spawn, wait_tcp
from tests.support.services import missing_service

POSTGRES_EXPORTER = Path("/usr/bin/prometheus-postgres-exporter")
APP_DB = "custom_app"
OTHER_DB = "custom_other"
# `custom_app` with a jobs table of fixed rows (no clock in them), and an empty `custom_other`.
DATABASES = {
    APP_DB: """
    CREATE TABLE jobs (queue text, created_at timestamptz, weight real, ok bool, cost numeric, tries int);
    INSERT INTO jobs VALUES
      ('mail', '2024-01-02 03:04:05+00', 1.1, true, 10.50, 3),
      ('mail', '2024-01-02 03:05:00+00', 2.5, false, 3, 1),
      ('re"port\\s', '2023-12-31 23:59:59.999+00', 1e7, NULL, NULL, 7),
      ('ünïcode', '1969-12-31 23:59:59.5+00', 0.000001, true, 0.0000001, NULL);
    """,
    OTHER_DB: "",
}


@dataclass
class PostgresExporter:
    url: str

    def scrape(self) -> str:
        with urllib.request.urlopen(self.url, timeout=30) as resp:
            body: bytes = resp.read()
        return body.decode()


@contextlib.contextmanager
def postgres_exporter(dsn: str, queries: Path, log: Path, *flags: str) -> Iterator[PostgresExporter]:
    """Debian's postgres_exporter 0.11 on 127.0.0.1 with only the queries file's metrics (and its own)."""
    if not POSTGRES_EXPORTER.exists():
        missing_service("prometheus-postgres-exporter")
    port = free_port()
    argv = [
        str(POSTGRES_EXPORTER),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--extend.query-path={queries}",
        "--disable-default-metrics",
        "--disable-settings-metrics",
        *flags,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_SOURCE_", "PG_EXPORTER_", "PG"))}
    process = spawn("postgres_exporter", argv, log, env | {"DATA_SOURCE_NAME": f"{dsn}?sslmode=disable"})
    try:
        wait_tcp(process, port)
        yield PostgresExporter(f"http://127.0.0.1:{port}/metrics")
    finally:
        process.stop()
