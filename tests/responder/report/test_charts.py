"""The report's charts and its one-sentence summary, on data made here: the time axis spans the data when it
covers less than half the period; a chart of non-negative values starts at zero; "Nothing needs attention"
only when every section was judged."""

from __future__ import annotations

import re

from responder.report import Period, Report, Section
from responder.report.charts import line_chart
from responder.report.prometheus import Series
from responder.report.render import overall
from responder.report.sections.common import chart_span

END = 1_796_630_400.0  # 2026-12-07 00:00 UTC
WEEK = Period("weekly", END)


def minutes(n: int, value: float = 1.0) -> Series:
    return Series({}, [(END - 60 * (n - i), value) for i in range(n + 1)])


def tick_labels(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_a_chart_spans_the_period_or_the_data_when_it_is_short() -> None:
    assert chart_span(WEEK, [("q", minutes(5))]) == (END - 300, END)
    whole = Series({}, [(WEEK.start + 60, 1.0), (END, 2.0)])
    assert chart_span(WEEK, [("q", whole), ("r", minutes(5))]) == (WEEK.start, END)
    # a lone point (a range query whose step saw one sample): the minute before the end, not a dot on a week
    assert chart_span(WEEK, [("q", Series({}, [(END - 60, 1.0)]))]) == (END - 60, END)
    seconds = Series({}, [(END - 20, 1.0), (END, 1.0)])
    assert chart_span(WEEK, [("q", seconds)]) == (END - 60, END)  # a minute at least
    assert chart_span(WEEK, []) == (WEEK.start, END)


def test_a_time_axis_of_minutes_shows_times_and_the_day_once() -> None:
    labels = tick_labels(
        line_chart("t", [("q", minutes(5))], "s", span=chart_span(WEEK, [("q", minutes(5))]))
    )
    assert "2026-12-07 (UTC)" in labels
    assert all(not re.fullmatch(r"\d\d-\d\d \d\d:\d\d", label) for label in labels)
    week = tick_labels(line_chart("t", [("q", minutes(5))], "s", span=(WEEK.start, END)))
    assert "12-01 00:00" in week and "2026-12-07 (UTC)" not in week


def test_a_narrow_band_of_small_values_starts_at_zero() -> None:
    points = [(END - 600 + 10 * i, 0.0058 + 0.0005 * (i % 2)) for i in range(60)]
    labels = tick_labels(line_chart("mean", [("q", Series({}, points))], "seconds"))
    assert "0.000" in labels and "0.006" in labels
    assert not any(label.startswith(("+", "1e")) or "e-" in label for label in labels)  # no offset to decode
    below = tick_labels(line_chart("delta", [("q", Series({}, [(END - 60, -2.0), (END, 3.0)]))], "x"))
    assert any(label.startswith(("\N{MINUS SIGN}", "-")) for label in below)  # negative data: its own range


def _report(*verdicts: str) -> Report:
    sections = [Section(f"s{i}", f"Section {i}", v, "why") for i, v in enumerate(verdicts)]  # type: ignore[arg-type]
    return Report(WEEK, "test", sections, END)


def test_the_summary_says_nothing_needs_attention_only_when_every_section_was_judged() -> None:
    assert overall(_report("ok", "ok")) == "Nothing needs attention."
    assert overall(_report("ok", "no data")) == (
        "No verdict, for lack of data: Section 1. The other sections are ok."
    )
    assert overall(_report("attention", "no data", "ok")) == (
        "Needs attention: Section 0. No verdict, for lack of data: Section 1."
    )
    assert overall(_report("no data", "no data")) == "No verdict, for lack of data: Section 0, Section 1."
