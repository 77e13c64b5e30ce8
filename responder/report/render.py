"""A report as one self-contained HTML file (inline CSS and SVG, no script, no external asset) and as a short
Markdown summary."""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2
from markupsafe import Markup

from responder.report.model import Report

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("responder.report", "templates"),
    autoescape=jinja2.select_autoescape(("html", "j2")),
    undefined=jinja2.StrictUndefined,
)


def to_html(report: Report) -> str:
    generated = datetime.fromtimestamp(report.generated_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    # The SVG comes from matplotlib, not from any input: the one place markup is trusted as is.
    charts = {s.key: [Markup(c) for c in s.charts] for s in report.sections}
    return _env.get_template("report.html.j2").render(report=report, charts=charts, generated=generated)


def to_markdown(report: Report) -> str:
    lines = [f"# pgwarden {report.period.label()}", "", f"Source: {report.source}", ""]
    lines += ["| section | verdict | reason |", "| --- | --- | --- |"]
    for s in report.sections:
        reason = s.reason.replace("|", "\\|")
        lines.append(f"| {s.title} | {s.verdict} | {reason} |")
    attention = [s.title for s in report.sections if s.verdict == "attention"]
    lines += [
        "",
        f"Needs attention: {', '.join(attention)}." if attention else "Nothing needs attention.",
        "",
    ]
    return "\n".join(lines)
