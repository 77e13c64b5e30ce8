"""Measuring: the exporters scraped alternately at one size of the database, and what each scrape showed."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.scrape.database import (
    STATEMENTS,
    BenchDatabase,
    exporter_dsn,
    extended_queries,
    postmaster_pid,
    sql_seconds,
)
from bench.scrape.exporters import (
    REWARM_AFTER,
    TTL0_LABEL,
    WARM_LABEL,
    Exporter,
    default_config,
    pgwarden,
    postgres_exporter,
    started,
    ttl0_config,
)
from bench.scrape.exposition import (
    AGE_METRIC,
    ExpositionReport,
    analyse,
    collector_name,
    samples_of,
    scrape_errors,
)
from bench.scrape.procstat import CpuWatch, session_memory_kb, wait_quiet
from devtools.pgserver import PostgresServer

WORK_DIR = Path(__file__).resolve().parents[2] / ".bench" / "scrape"


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
            result.rss_kb, result.hwm_kb = session_memory_kb(exp.pid)
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
