"""Charts as inline SVG (matplotlib, Agg backend): no external asset, no script."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from markupsafe import escape
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from responder.report.prometheus import Series

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
matplotlib.rcParams["svg.hashsalt"] = "pgwarden"  # stable ids from run to run
# Labels are data (index, table and query names): a `$` in one is text, never mathtext to parse.
matplotlib.rcParams["text.parse_math"] = False

log = logging.getLogger(__name__)


def _drawn(title: str, figsize: tuple[float, float], draw: Callable[[Figure, Axes], None]) -> str:
    """The chart as an SVG document; when it cannot be drawn, a note in its place (HTML, escaped), so the
    rest of its section and of the report is still built."""
    fig, ax = plt.subplots(figsize=figsize, dpi=96)
    try:
        draw(fig, ax)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    except Exception as exc:
        log.warning("chart not drawn", extra={"chart": title, "error": f"{type(exc).__name__}: {exc}"})
        return f'<p class="chart-note">The chart {escape(title)} could not be drawn ({escape(type(exc).__name__)}).</p>'
    finally:
        plt.close(fig)
    return re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.S)  # no XML prolog, DOCTYPE


def time_format(limits: tuple[float, float]) -> str:
    """Tick labels for a time axis of these limits (matplotlib day numbers): the date only when it spans days."""
    days = limits[1] - limits[0]
    if days >= 1:
        return "%m-%d %H:%M"
    return "%H:%M" if days >= 1 / 24 else "%H:%M:%S"


def line_chart(
    title: str,
    series: Sequence[tuple[str, Series]],
    unit: str,
    limit: tuple[str, float] | None = None,
    span: tuple[float, float] | None = None,
) -> str:
    """One line per (label, series) over time; `limit` draws a labelled horizontal line; `span` fixes the
    time axis (a series younger than it shows where it starts). A chart of values never below zero starts
    at zero."""

    def draw(fig: Figure, ax: Axes) -> None:
        for label, s in series:
            xs = np.array([int(t) for t, _ in s.points], dtype="datetime64[s]")
            ys = [v for _, v in s.points]
            ax.plot(xs, ys, label=label, marker="o" if len(xs) < 20 else None, markersize=3, linewidth=1.2)
        if limit is not None:
            ax.axhline(limit[1], color="#b22", linestyle="--", linewidth=1, label=limit[0])
        if span is not None:
            start, end = (mdates.date2num(np.datetime64(int(t), "s")) for t in span)  # type: ignore[no-untyped-call]
            ax.set_xlim(float(start), float(end))
        if all(v >= 0 for _, s in series for _, v in s.points):
            # From zero: 0.0058 to 0.0063 s is a flat line at 6 ms, not a cliff (nor an axis offset to decode).
            ax.set_ylim(bottom=0)
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        limits = ax.get_xlim()
        ax.xaxis.set_major_formatter(mdates.DateFormatter(time_format(limits)))  # type: ignore[no-untyped-call]
        if limits[1] - limits[0] < 1:  # the day, once, under a time axis of hours or minutes
            ax.set_xlabel(f"{mdates.num2date(limits[0]):%Y-%m-%d} (UTC)", fontsize=7)  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        fig.autofmt_xdate()

    return _drawn(title, (8, 2.8), draw)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str) -> str:
    """Horizontal bars, largest on top."""

    def draw(fig: Figure, ax: Axes) -> None:
        labels = [label for label, _ in reversed(bars)]
        ax.barh(labels, [v for _, v in reversed(bars)], color="#4a7ab5")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="x")

    return _drawn(title, (8, 0.5 + 0.3 * max(1, len(bars))), draw)
