"""A report as one self-contained HTML file (inline CSS and SVG, no script, no external asset) and as a short
Markdown summary."""

from __future__ import annotations

import re
from collections.abc import Callable
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
    return _env.get_template("report.html.j2").render(
        report=report, charts=charts, generated=generated, overall=overall(report)
    )


# What makes inline Markdown out of text: code, emphasis, strikethrough, links and images, HTML and autolinks,
# entities, math (`$`), table cells; `_` only where it can open or close emphasis (not inside a word: `pg_stat_user_tables`).
# Block syntax (headings, lists, quotes) needs a line start, and a cell never starts a line.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*~$\[\]<>&|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|:(?=//)|(?<=www)\.")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def markdown_text(text: str) -> str:
    """Text as one inline run of Markdown, taken literally: line breaks become spaces (no new line, so no
    heading, list or table row) and the special characters are backslash-escaped (no link, image, HTML tag,
    emphasis or cell break; no bare URL for GitHub's autolinks)."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m[0], _LINE_BREAKS.sub(" ", text))


def to_markdown(report: Report) -> str:
    lines = [
        f"# pgwarden {markdown_text(report.period.label())}",
        "",
        f"Source: {markdown_text(report.source)}",
    ]
    lines += ["", "| section | verdict | reason |", "| --- | --- | --- |"]
    for s in report.sections:
        cells = (markdown_text(s.title), markdown_text(s.verdict), markdown_text(s.reason))
        lines.append(f"| {' | '.join(cells)} |")
    lines += ["", overall(report, markdown_text), ""]
    return "\n".join(lines)


def overall(report: Report, text: Callable[[str], str] = str) -> str:
    """The report in one sentence: what needs attention, and what could not be judged; "Nothing needs
    attention" only when every section had its data and each is ok. `text` makes a title Markdown."""
    attention = [text(s.title) for s in report.sections if s.verdict == "attention"]
    unjudged = [text(s.title) for s in report.sections if s.verdict == "no data"]
    said = [f"Needs attention: {', '.join(attention)}."] if attention else []
    if unjudged:
        said.append(f"No verdict, for lack of data: {', '.join(unjudged)}.")
        if not attention and len(unjudged) < len(report.sections):
            said.append("The other sections are ok.")
    return " ".join(said) or "Nothing needs attention."
