"""What every section shares: its inputs, PromQL helpers, number formats and the drill sections (weekly
backup tests, the monthly disaster-recovery test and the quarterly cross-region test read the same rows).

A section reads Prometheus over the period (the exporter's series), the journal (drills, VACUUM ANALYZE runs)
or the target's catalog. What it lacks, it names (`no data: <metric>`): it never guesses a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from responder.report.catalog import Catalog
from responder.report.charts import line_chart
from responder.report.model import Period, Section, Table, no_data
from responder.report.prometheus import Prometheus, Sample, Series

SLOW_MEAN_SECONDS = 1.0  # a query averaging more than this needs a look
REGRESSION = 0.5  # mean time up by more than 50% against the previous period
SEQ_SHARE = 0.9  # a table read by sequential scans this share of the time ...
SEQ_MIN_SCANS = 100  # ... with at least this many of them in the period
CONNECTIONS_HIGH = 0.8  # peak connections against max_connections
IDLE_IN_TX_HIGH = 5
BLOAT_RATIO = 0.3
STALE_SECONDS = 7 * 86400.0  # vacuum and statistics older than this, on a table that changed
DEAD_RATIO = 0.2
HORIZON_XIDS = 10_000_000  # a VACUUM horizon older than this: PostgresVacuumHorizonHeldBack's warning level
CPU_UP, CPU_DOWN, CPU_DOWN_MAX = 70.0, 20.0, 40.0  # percent
MEMORY_LOW, MEMORY_SPARE = 256 * 2**20, 2 * 2**30  # freeable memory, bytes
EOL_WARNING_DAYS = 180
TOP = 10
POINTS = 240  # a chart's resolution
MIN_STEP = 5.0  # seconds: no finer than a few scrapes
MIN_SPAN = 60.0  # seconds: the shortest time axis
# PostgreSQL community end-of-life dates (https://www.postgresql.org/support/versioning/); RDS follows them.
POSTGRES_EOL = {
    11: date(2023, 11, 9), 12: date(2024, 11, 21), 13: date(2025, 11, 13), 14: date(2026, 11, 12),
    15: date(2027, 11, 11), 16: date(2028, 11, 9), 17: date(2029, 11, 8), 18: date(2030, 11, 14),
}  # fmt: skip


@dataclass
class Inputs:
    """Everything the sections read. `drills`/`vacuums`/`migrations` are journal rows of the period (None: no
    journal);
    `catalog` the target's own facts (None: no access to the target)."""

    prometheus: Prometheus
    selector: str  # extra PromQL label matchers for every series, e.g. `target="production"`
    period: Period
    drills: list[dict[str, Any]] | None = None
    vacuums: list[dict[str, Any]] | None = None
    catalog: Catalog | None = None
    migrations: list[dict[str, Any]] | None = None  # `migrate` and `backfill` rows of the period
    advice: list[dict[str, Any]] | None = None  # `index_advice` rows of the period

    def m(self, name: str, *matchers: str) -> str:
        """A series selector with the report's own matchers."""
        return f"{name}{{{','.join(x for x in (self.selector, *matchers) if x)}}}"

    async def instant(self, expr: str) -> list[Sample]:
        return await self.prometheus.instant(expr, self.period.end)

    async def over(self, fn: str, name: str, *matchers: str, offset: bool = False) -> list[Sample]:
        """`fn(name{...}[period])` at the end of the period (or of the one before, with `offset`)."""
        shift = f" offset {self.period.window}" if offset else ""
        return await self.instant(f"{fn}({self.m(name, *matchers)}[{self.period.window}]{shift})")

    async def _steps(self, expr: str, start: float, step: float) -> list[Series]:
        """`expr` from `start` to the period's end, each point the maximum of its step on a grid of at most a
        minute (so a short burst still shows)."""
        grid = max(1, min(60, int(step)))
        return await self.prometheus.range(
            f"max_over_time(({expr})[{int(step)}s:{grid}s])", start, self.period.end, step
        )

    async def trend(self, expr: str) -> list[Series]:
        """`expr` over the period in POINTS steps, and its value at the very end (series younger than the
        grid still show). When the data covers less than half of what was asked (a new server, a demo's
        minutes), the POINTS steps are asked again over the data alone (twice at most: a week's last step
        is 42 minutes, a tenth of which is still too coarse for a few minutes of data)."""
        p = self.period
        start, step = p.start, p.step
        found = await self._steps(expr, start, step)
        for _ in range(2):
            first = min((s.points[0][0] for s in found), default=p.end)
            if first - start <= (p.end - start) / 2 or step <= MIN_STEP:
                break
            start = max(start, first - step)
            step = max((p.end - start) / POINTS, MIN_STEP)
            found = await self._steps(expr, start, step)
        by_labels = {_series_key(s.labels): s for s in found}
        for sample in await self.instant(expr):
            series = by_labels.get(_series_key(sample.labels))
            if series is None:
                found.append(Series(sample.labels, [(p.end, sample.value)]))
            elif series.points[-1][0] < p.end:
                series.points.append((p.end, sample.value))
        return found

    def chart(
        self,
        title: str,
        series: Sequence[tuple[str, Series]],
        unit: str,
        limit: tuple[str, float] | None = None,
    ) -> str:
        """A line chart over the report's period, or over the data when it covers less than half of it."""
        return line_chart(title, series, unit, limit, span=chart_span(self.period, series))

    async def peak(self, expr: str) -> float | None:
        """The highest value of a single-series `expr` (an aggregation) over the period, on a one-minute grid
        and at the end."""
        found = await self.instant(f"max_over_time(({expr})[{self.period.window}:60s])")
        found += await self.instant(expr)
        return max((s.value for s in found), default=None)


def chart_span(period: Period, series: Sequence[tuple[str, Series]]) -> tuple[float, float]:
    """The time axis of a chart: the whole period, unless its data starts in the second half of it; then from
    the data's first point (a minute at least), so minutes of data (or a single point, when the range query's
    step saw one) are not a dot at the end of a week."""
    times = {t for _, s in series for t, _ in s.points}
    first = min(times, default=period.start)
    if times and first - period.start > period.seconds / 2:
        return min(first, period.end - MIN_SPAN), period.end
    return period.start, period.end


def _series_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


SectionBuilder = Callable[[Inputs, str, str], Awaitable[Section]]
"""A checklist item: `(inputs, key, title)` to its section; `SECTIONS` names each key and title once."""


def regex_of(values: Sequence[str]) -> str:
    """A PromQL string literal body that full-matches exactly these values."""
    return "|".join(re.escape(v) for v in values).replace("\\", "\\\\").replace('"', '\\"')


def key_of(labels: dict[str, str], *names: str) -> tuple[str, ...]:
    return tuple(labels.get(n, "") for n in names)


def by_labels(samples: list[Sample], *names: str) -> dict[tuple[str, ...], float]:
    return {key_of(s.labels, *names): s.value for s in samples}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 86400:
        return f"{value / 86400:.1f} d"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value:.3g} s" if value < 60 else f"{value / 60:.1f} min"


def exact_seconds(value: object) -> str:
    """Drill times as the drill measured them (RTO and RPO are compared to targets in seconds)."""
    return f"{value:g} s" if isinstance(value, int | float) else "-"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def iso_ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


INDEX = ("datname", "schemaname", "relname", "indexrelname")
TABLE = ("datname", "schemaname", "relname")


async def unused_indexes(q: Inputs) -> tuple[bool, list[tuple[tuple[str, ...], float]]]:
    """(whether the series exist, the indexes unused during the whole period with their size)."""
    seen = await q.over("max_over_time", "pg_index_unused")
    unused = [s for s in await q.over("min_over_time", "pg_index_unused") if s.value == 1]
    sizes = by_labels(await q.over("last_over_time", "pg_index_size_bytes"), *INDEX)
    found = [(key_of(s.labels, *INDEX), sizes.get(key_of(s.labels, *INDEX), 0.0)) for s in unused]
    return bool(seen), sorted(found, key=lambda item: -item[1])


def index_table(caption: str, unused: list[tuple[tuple[str, ...], float]]) -> Table:
    return Table(
        caption,
        ("database", "table", "index", "size"),
        [(k[0], f"{k[1]}.{k[2]}", k[3], size(v)) for k, v in unused[: TOP * 2]],
    )


def _is_cross_region(result: dict[str, Any]) -> bool:
    return result.get("cross_region") is True or "cross-region" in str(result.get("source", ""))


def drill_section(cross_region_only: bool = False) -> SectionBuilder:
    """The restore drills journaled in the period (`restore_drill` rows), with restore time and recovery
    point age; no drill in the period is itself the finding."""

    async def build(q: Inputs, key: str, title: str) -> Section:
        if q.drills is None:
            return no_data(key, title, "the journal (restore_drill rows): give the report --config")
        rows = [r for r in q.drills if r.get("outcome") in ("succeeded", "failed")]
        if cross_region_only:
            rows = [r for r in rows if _is_cross_region(r.get("result") or {})]
        what = "cross-region restore drill" if cross_region_only else "restore drill"
        if not rows:
            return Section(key, title, "attention", f"no {what} was journaled in the period")
        table_rows = []
        failed = 0
        points: list[tuple[float, float]] = []
        for r in sorted(rows, key=lambda r: r["id"]):
            result = r.get("result") or {}
            checks = result.get("checks") or []
            passed = sum(1 for c in checks if c.get("passed"))
            ok = r["outcome"] == "succeeded" and passed == len(checks)
            failed += not ok
            finished = iso_ts(r["timings"].get("finished_at")) or 0.0
            restore = result.get("restore_seconds")
            if isinstance(restore, int | float):
                points.append((finished, float(restore)))
            table_rows.append((
                when(finished), str(result.get("dbidentifier", "-")), str(result.get("source", "-")),
                exact_seconds(restore), exact_seconds(result.get("recovery_point_age_seconds")),
                f"{passed}/{len(checks)}",
                "passed" if ok else (r.get("error") or "a check failed"),
            ))  # fmt: skip
        table = Table(
            f"{what.capitalize()}s of the period",
            ("finished", "instance", "source", "restore", "recovery point age", "checks", "result"),
            table_rows,
        )
        charts = []
        if points:
            charts.append(
                q.chart("Restore time per drill", [("restore seconds", Series({}, points))], "seconds")
            )
        if failed:
            return Section(
                key, title, "attention", f"{failed} of {plural(len(rows), what)} failed", charts, [table]
            )
        slowest = max((p[1] for p in points), default=None)
        return Section(
            key, title, "ok", f"{plural(len(rows), what)} passed every check (slowest restore {seconds(slowest)})",
            charts, [table],
        )  # fmt: skip

    return build
