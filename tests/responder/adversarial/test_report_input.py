"""The report survives hostile names: a real PostgreSQL database with an index named like mathtext
(`idx_$\\frac{1}{$`), a table and a slow query whose names hold a newline, a Markdown heading, a link and a
`<script>`; the real exporter and a real Prometheus scraping it. The report builds (exit 0) with the chart
drawn, the HTML shows the names as text, and the Markdown gains no line, link, image or tag from them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

from devtools.pgserver import PostgresServer
from responder.cli import main
from responder.report.charts import bar_chart
from tests.responder.report.scenario import create_database, exporter_and_prometheus, wait_until_seen
from tests.responder.report.test_report import Sections
from tests.support.postgres import MONITOR_ROLE

MATH_INDEX = "idx_$\\frac{1}{$"
HOSTILE = "t\n# H](http://evil) <script>"  # a table name, and a column alias in the slow query
SLOW_QUERY = f'SELECT 1 AS "{HOSTILE.replace("t", "q", 1)}", pg_sleep(1.1)'


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class HostileScenario:
    prometheus: str
    database: str


@pytest.fixture(scope="module")
def hostile_scenario(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileScenario]:
    workdir = tmp_path_factory.mktemp("hostile-report")
    database = f"hostile_{uuid.uuid4().hex[:8]}"
    table = _ident(HOSTILE)
    create_database(
        pg_server,
        database,
        (
            f"CREATE TABLE {table} (id int PRIMARY KEY, note text)",
            f"INSERT INTO {table} SELECT g, 'n' || g FROM generate_series(1, 1000) g",
            f"CREATE INDEX {_ident(MATH_INDEX)} ON {table} (note)",  # never used: in the unused-index chart
            f"ANALYZE {table}",
            f"GRANT SELECT ON {table} TO {MONITOR_ROLE}",
            SLOW_QUERY,
        ),
    )
    collectors = {"statements": {"include_query": True}, "indexes": {"ttl": "1s"}}
    services = exporter_and_prometheus(workdir, pg_server, "hostile", database, collectors)
    exporter, prometheus = services
    ready = (
        f'pg_index_unused{{datname="{database}"}} == 1',
        f'pg_stat_statements_mean_seconds{{datname="{database}"}} > 1',
        f'pg_stat_statements_query_info{{datname="{database}",query=~"(?s).*evil.*"}}',
    )
    try:
        wait_until_seen(prometheus, exporter, ready)
        yield HostileScenario(prometheus.url, database)
    finally:
        for s in reversed(services):
            s.stop()
        pg_server.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _unescaped(text: str, token: str) -> int:
    """How many times `token` occurs in Markdown `text` not preceded by a backslash escape."""
    return len(re.findall(r"(?<!\\)(?:\\\\)*" + re.escape(token), text))


def test_a_hostile_index_name_is_charted_and_escaped(
    hostile_scenario: HostileScenario, tmp_path: Path
) -> None:
    out = tmp_path / "weekly.html"
    selector = f'datname="{hostile_scenario.database}"'
    argv = ["report", "--period", "weekly", "--prometheus", hostile_scenario.prometheus, "--out", str(out), "--selector", selector]  # fmt: skip
    assert main(argv) == 0
    html = out.read_text()
    parsed = Sections()
    parsed.feed(html)
    assert parsed.scripts == 0 and "<script>" not in html
    assert "&lt;script&gt;" in html
    assert MATH_INDEX in parsed.text("index_usage")  # the table cell, as text
    assert "index_usage" in parsed.with_chart  # mathtext off: the chart is drawn, label and all
    assert parsed.sections["index_usage"][0] == "attention"
    assert parsed.sections["slow_queries"][0] == "attention"

    markdown = out.with_suffix(".md").read_text()
    lines = markdown.split("\n")
    sections = len(parsed.sections)
    assert len(lines) == 6 + sections + 3, markdown  # title, source, table head, a row per section, summary
    rows = lines[6 : 6 + sections]
    assert all(_unescaped(row, "|") == 4 for row in rows), markdown
    slow = next(row for row in rows if row.startswith("| Slow queries |"))
    assert "evil" in slow  # the query's text is in the reason: the escaping below is what keeps it harmless
    for token in ("[", "]", "<", ">", "http://"):
        assert _unescaped(markdown, token) == 0, (token, markdown)
    assert [line for line in lines if line.startswith("#")] == [lines[0]]


def test_markdown_text_is_one_literal_inline_run() -> None:
    from responder.report.render import markdown_text  # here: the other tests also run on a report without it

    text = "a\r\n# h\u2028![i](http://x) <b>*e*</b> _u_ pg_stat_user_tables `c` | ~s~ $x$ www.evil.com &amp;"
    escaped = markdown_text(text)
    assert "\n" not in escaped and "\r" not in escaped and "\u2028" not in escaped
    assert "pg_stat_user_tables" in escaped  # an underscore inside a word opens nothing
    for token in ("[", "]", "<", ">", "*", "`", "|", "~", "$", "&", "_u_", "://", "www."):
        assert _unescaped(escaped, token) == 0, (token, escaped)


def test_a_chart_that_cannot_be_drawn_is_a_note() -> None:
    """mathtext back on for this one chart: the label cannot be parsed, and the chart is a note instead."""
    with matplotlib.rc_context({"text.parse_math": True}):
        note = bar_chart("Unused <indexes>", [(MATH_INDEX, 1.0)], "MiB")
    assert (
        note == '<p class="chart-note">The chart Unused &lt;indexes&gt; could not be drawn (ValueError).</p>'
    )
    assert bar_chart("Unused indexes", [(MATH_INDEX, 1.0)], "MiB").startswith("<svg")
