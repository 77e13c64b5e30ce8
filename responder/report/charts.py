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


def line_chart(
    title: str,
    series: Sequence[tuple[str, Series]],
    unit: str,
    limit: tuple[str, float] | None = None,
    span: tuple[float, float] | None = None,
) -> str:
    """One line per (label, series) over time; `limit` draws a labelled horizontal line; `span` fixes the
    time axis to the report's period (a series younger than the period shows where it starts)."""

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
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
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
