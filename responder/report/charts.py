"""Charts as inline SVG (matplotlib, Agg backend): no external asset, no script."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from responder.report.prometheus import Series

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
matplotlib.rcParams["svg.hashsalt"] = "pgwarden"  # stable ids from run to run


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return re.sub(r"^.*?(<svg)", r"\1", text, count=1, flags=re.S)  # drop the XML prolog and DOCTYPE


def line_chart(
    title: str,
    series: Sequence[tuple[str, Series]],
    unit: str,
    limit: tuple[str, float] | None = None,
    span: tuple[float, float] | None = None,
) -> str:
    """One line per (label, series) over time; `limit` draws a labelled horizontal line; `span` fixes the
    time axis to the report's period (a series younger than the period shows where it starts)."""
    fig, ax = plt.subplots(figsize=(8, 2.8), dpi=96)
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
    return _svg(fig)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str) -> str:
    """Horizontal bars, largest on top."""
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.3 * max(1, len(bars))), dpi=96)
    labels = [label for label, _ in reversed(bars)]
    ax.barh(labels, [v for _, v in reversed(bars)], color="#4a7ab5")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, axis="x")
    return _svg(fig)
