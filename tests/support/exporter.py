"""Helpers for the exporter tests: scrape a target in-process, look samples up; the test databases
and roles."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from devtools.pgserver import PostgresServer
from exporter.assemble import resolve_targets, scheduled_collectors
from exporter.config import ExporterConfig, parse_config
from exporter.exposition import Family, join_fragments
from exporter.scrape import TargetScraper


class Samples:
    """Parsed samples of one exposition: `get(name, **labels)` finds one, `all(name)` lists them."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Validates the whole exposition (it raises on malformed text); it renames counters to *_total,
        # so the lookups below read the sample lines as Prometheus does.
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [parse_sample(line) for line in text.splitlines() if line and not line.startswith("#")]

    def all(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (lbl, v)
            for n, lbl, v in self.samples
            if n == name and all(lbl.get(k) == val for k, val in labels.items())
        ]

    def get(self, name: str, **labels: str) -> float | None:
        found = self.all(name, **labels)
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
        return found[0][1] if found else None

    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def parse_sample(line: str) -> tuple[str, dict[str, str], float]:
    """`name{a="x"} 1.5` as Prometheus reads it (escapes in label values undone)."""
    brace = line.find("{")
    space = line.find(" ")
    if brace == -1 or brace > space:
        name, value = line.split(" ", 1)
        return name, {}, float(value)
    name = line[:brace]
    labels: dict[str, str] = {}
    i = brace + 1
    while line[i] != "}":
        eq = line.index("=", i)
        key = line[i:eq]
        assert line[eq + 1] == '"', line
        j = eq + 2
        chars: list[str] = []
        while line[j] != '"':
            if line[j] == "\\":
                chars.append(_ESCAPES[line[j + 1]])
                j += 2
            else:
                chars.append(line[j])
                j += 1
        labels[key] = "".join(chars)
        i = j + 1
        if line[i] == ",":
            i += 1
    return name, labels, float(line[i + 1 :].strip())


def make_config(dsn: str, **sections: Any) -> ExporterConfig:
    target: dict[str, Any] = {"name": "test", "dsn": dsn}
    target.update(sections.pop("target", {}))
    return parse_config({"targets": [target], **sections})


class Scraper:
    """A TargetScraper with a parse step; close() it (the fixture does)."""

    def __init__(self, config: ExporterConfig) -> None:
        self.inner = TargetScraper(resolve_targets(config)[0], config, scheduled_collectors(config))

    async def scrape(self, const_labels: str = "") -> Samples:
        return Samples(join_fragments([await self.inner.scrape(const_labels)]).decode())

    async def close(self) -> None:
        await self.inner.close()


def only(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: mapping[k] for k in keys}


@contextlib.contextmanager
def background_query(dsn: str, sql: str) -> Iterator[int]:
    """Run `sql` in a thread on its own connection; yields the backend pid; cancels it on exit."""
    conn = psycopg.connect(dsn, autocommit=True)
    pid = conn.info.backend_pid
    errors: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute(sql.encode())
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield pid
    finally:
        conn.cancel_safe()
        thread.join(10)
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def create_databases(pg_server: PostgresServer, contents: Mapping[str, str]) -> None:
    """Drop and create each database afresh, then run its SQL in it (none for an empty string)."""
    for db, sql in contents.items():
        pg_server.execute(f"DROP DATABASE IF EXISTS {db}")
        pg_server.execute(f"CREATE DATABASE {db}")
        if sql:
            pg_server.execute(sql, dbname=db)


@contextlib.contextmanager
def server_setting(pg_server: PostgresServer, name: str, value: str) -> Iterator[None]:
    """The server runs with `name = value` (ALTER SYSTEM and a reload) inside the block, then as it was."""
    pg_server.execute(f"ALTER SYSTEM SET {name} = {value}")
    pg_server.execute("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        pg_server.execute(f"ALTER SYSTEM RESET {name}")
        pg_server.execute("SELECT pg_reload_conf()")


def flush_stats(pg_server: PostgresServer, db: str, sql: str = "") -> None:
    """Run statements and have their statistics (and those of sessions already closed) visible at once.

    PostgreSQL 15+ batches them per backend: pg_stat_force_next_flush() sends them. Before 15 a backend sends
    them to the statistics collector when it exits, which writes them within half a second."""
    with psycopg.connect(pg_server.dsn(db), autocommit=True) as conn:
        if sql:
            conn.execute(sql.encode())
        if conn.info.server_version >= 150000:
            conn.execute(b"SELECT pg_stat_force_next_flush()")
            return
    time.sleep(STATS_COLLECTOR_DELAY)


STATS_COLLECTOR_DELAY = 1.0  # PGSTAT_STAT_INTERVAL (500 ms) and the collector's write, before PostgreSQL 15


def assert_declared_labels(samples: Samples, families: Iterable[Family]) -> None:
    """Every sample of each family carries exactly the labels the family declares; a family without samples
    must say when it may be absent (`absent_when`). Families named with a placeholder (`<name>`) are skipped."""
    for family in families:
        if "<" in family.name:
            continue
        seen = {frozenset(lbl) for lbl, _ in samples.all(family.name)}
        if not seen:
            assert family.absent_when, f"{family.name} was not exported"
            continue
        assert seen == {frozenset(family.labels)}, f"{family.name}: {seen} != {family.labels}"


# Two databases with known tables; names are prefixed so other suites' databases do not collide.
DB_A = "exp_shop"
DB_B = "exp_billing"
# The contents of each, created once per session by the `databases` fixture.
DATABASES = {
    DB_A: """
    CREATE TABLE orders (id int PRIMARY KEY, customer int, note text);
    CREATE INDEX orders_customer_idx ON orders (customer);
    CREATE INDEX orders_note_idx ON orders (note);
    INSERT INTO orders SELECT g, g % 100, md5(g::text) FROM generate_series(1, 20000) g;
    CREATE TABLE small (id int);
    INSERT INTO small VALUES (1), (2);
    CREATE TABLE churn (id int PRIMARY KEY, payload text);
    INSERT INTO churn SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
    """,
    DB_B: "CREATE TABLE invoices (id int PRIMARY KEY, amount numeric); "
    "INSERT INTO invoices SELECT g, g FROM generate_series(1, 500) g",
}


ScrapeAfter = Callable[[str, str], Awaitable[Samples]]


class ScratchTable(Protocol):
    """The `scratch_table` fixture's function."""

    def __call__(self, db: str, name: str, definition: str, fill: str = "") -> str: ...


APP_ROLE = "exp_app_user"
APP_PASSWORD = "app-user-pw"
STANDBY_SLOT = "exp_streaming_slot"
