"""What a report is made of: a period, and one section per checklist item with its verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Verdict = Literal["ok", "attention", "no data"]
PeriodName = Literal["weekly", "monthly", "quarterly"]
PERIOD_SECONDS: dict[str, float] = {"weekly": 7 * 86400.0, "monthly": 30 * 86400.0, "quarterly": 90 * 86400.0}


@dataclass(frozen=True)
class Period:
    name: PeriodName
    end: float  # Unix seconds

    @property
    def seconds(self) -> float:
        return PERIOD_SECONDS[self.name]

    @property
    def start(self) -> float:
        return self.end - self.seconds

    @property
    def window(self) -> str:
        """The period as a PromQL range."""
        return f"{int(self.seconds)}s"

    @property
    def step(self) -> float:
        """A chart's resolution: 240 points over the period."""
        return self.seconds / 240

    def label(self) -> str:
        start, end = (
            datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M") for t in (self.start, self.end)
        )
        return f"{self.name} report, {start} to {end} UTC"


@dataclass(frozen=True)
class Table:
    caption: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass
class Section:
    """One checklist item: a verdict, the reason in one sentence, a chart where a trend matters, tables."""

    key: str
    title: str
    verdict: Verdict
    reason: str
    charts: list[str] = field(default_factory=list)  # inline SVG documents
    tables: list[Table] = field(default_factory=list)


def no_data(key: str, title: str, what: str) -> Section:
    """A section without the data it needs: it says which, and gives no verdict."""
    return Section(key, title, "no data", f"no data: {what}")


def partly(
    key: str,
    title: str,
    missing: Sequence[str],
    found: str,
    charts: list[str] | None = None,
    tables: list[Table] | None = None,
) -> Section:
    """A section that could check only part of what it covers and found nothing there: no verdict (an `ok`
    would vouch for the part it could not see); it says what is missing, then what it found."""
    return Section(
        key, title, "no data", f"no data: {'; '.join(missing)}; {found}", charts or [], tables or []
    )


@dataclass
class Report:
    period: Period
    source: str  # what it was built from (Prometheus URL, target)
    sections: list[Section]
    generated_at: float

    @property
    def id(self) -> str:
        return f"{self.period.name}-{datetime.fromtimestamp(self.period.end, UTC):%Y%m%dT%H%M%SZ}"

    def verdicts(self) -> dict[str, str]:
        return {s.key: s.verdict for s in self.sections}
