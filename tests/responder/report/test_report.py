"""The maintenance report from a real Prometheus that scraped a real scenario (see `scenario`), built by the
`report` command: every section of each period with a verdict, the long query, the unused index, the
duplicate indexes and the drill; and `no data` where the scenario has no series (no RDS here)."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from responder.cli import main
from responder.report import build_report
from responder.report.catalog import Catalog, catalog_at
from tests.responder.report.scenario import (
    DRILL_INSTANCE,
    DUPLICATE_INDEX,
    ROLE_PASSWORD,
    UNUSED_INDEX,
    ReportScenario,
    prometheus_has,
)
from tests.support.exporter import wait_for

__all__ = ["report_scenario"]
from tests.responder.report.scenario import report_scenario


class Sections(HTMLParser):
    """section id -> (verdict, text), and the ids of sections holding an <svg>."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, tuple[str, list[str]]] = {}
        self.with_chart: set[str] = set()
        self._current: str | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._current = str(a["id"])
            self.sections[self._current] = (str(a["data-verdict"]), [])
        elif tag == "svg" and self._current:
            self.with_chart.add(self._current)
        elif tag in ("script", "link", "img") or (tag == "image" and a.get("href", "").startswith("http")):
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current:
            self.sections[self._current][1].append(data)

    def text(self, key: str) -> str:
        return " ".join(self.sections[key][1])


def build(scenario: ReportScenario, period: str, out: Path, *extra: str) -> tuple[Sections, str]:
    code = main(
        ["report", "--period", period, "--prometheus", scenario.prometheus, "--out", str(out), *extra]
    )
    assert code == 0
    parsed = Sections()
    parsed.feed(out.read_text())
    return parsed, out.with_suffix(".md").read_text()


def test_weekly_report_shows_the_long_query_the_unused_index_and_the_drill(
    report_scenario: ReportScenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, markdown = build(
        report_scenario, "weekly", tmp_path / "weekly.html", "--config", str(report_scenario.config)
    )
    assert list(report.sections) == [
        "slow_queries", "index_usage", "backup_tests", "connection_pool", "schema_migrations", "index_advice"
    ]  # fmt: skip
    # no index_advice run was journaled in the scenario's week: said, without a verdict
    assert report.sections["index_advice"][0] == "no data"
    assert "no index_advice run was journaled" in report.text("index_advice")
    # no migration was journaled in the scenario's week: said, and no finding
    assert report.sections["schema_migrations"][0] == "ok"
    assert "no schema migration or backfill was journaled" in report.text("schema_migrations")
    assert report.scripts == 0, "the report must be self-contained"
    verdict, _ = report.sections["slow_queries"]
    assert verdict == "attention" and "rpt_long_query" in report.text("slow_queries")
    assert re.search(r"averages 1\.2\d* s", report.text("slow_queries"))
    verdict, _ = report.sections["index_usage"]
    assert verdict == "attention" and UNUSED_INDEX in report.text("index_usage")
    verdict, _ = report.sections["backup_tests"]
    assert (
        verdict == "ok"
        and DRILL_INSTANCE in report.text("backup_tests")
        and "412" in report.text("backup_tests")
    )
    assert report.sections["connection_pool"][0] in ("ok", "attention")
    assert {"slow_queries", "index_usage", "backup_tests", "connection_pool"} <= report.with_chart
    for title in ("Slow queries", "Index usage", "Backup test results", "Connection pool"):
        assert re.search(rf"^\| {title} \| (ok|attention) \| ", markdown, re.M), markdown
    with capsys.disabled():
        print("\nweekly report verdicts:", {k: v for k, (v, _) in report.sections.items()})


def test_monthly_and_quarterly_reports_name_what_has_no_data(
    report_scenario: ReportScenario, tmp_path: Path
) -> None:
    config = ("--config", str(report_scenario.config))
    monthly, _ = build(report_scenario, "monthly", tmp_path / "monthly.html", *config)
    assert list(monthly.sections) == ["table_bloat", "vacuum_age", "vacuum_horizon", "vacuum_runs", "dr_test"]
    assert monthly.sections["dr_test"][0] == "ok"  # the week's drill is in the month too
    assert monthly.sections["vacuum_runs"][0] == "attention"  # none ran through the responder
    quarterly, markdown = build(report_scenario, "quarterly", tmp_path / "quarterly.html", *config)
    assert list(quarterly.sections) == [
        "index_review", "instance_sizing", "security_patches", "index_advice", "cross_region"
    ]  # fmt: skip
    assert quarterly.sections["index_review"][0] == "attention"
    assert DUPLICATE_INDEX in quarterly.text("index_review") and UNUSED_INDEX in quarterly.text(
        "index_review"
    )
    # no RDS in this scenario: the sizing section says which metric is missing instead of a verdict
    assert quarterly.sections["instance_sizing"] == ("no data", quarterly.sections["instance_sizing"][1])
    assert "no data: rds_cpu_usage_percent_average" in quarterly.text("instance_sizing")
    assert quarterly.sections["security_patches"][0] in ("ok", "attention")
    assert "15." in quarterly.text("security_patches")
    assert quarterly.sections["cross_region"][0] == "attention"  # the drill restored in-region
    assert quarterly.sections["index_advice"][0] == "no data"
    assert "| Instance sizing | no data | no data: rds_cpu_usage_percent_average |" in markdown


def test_without_the_journal_and_target_their_sections_have_no_data(
    report_scenario: ReportScenario, tmp_path: Path
) -> None:
    weekly, _ = build(report_scenario, "weekly", tmp_path / "weekly.html")
    assert weekly.sections["backup_tests"][0] == "no data"
    assert "no data: the journal" in weekly.text("backup_tests")
    assert weekly.sections["index_advice"][0] == "no data"
    assert "no data: the journal (index_advice rows)" in weekly.text("index_advice")
    assert weekly.sections["slow_queries"][0] == "attention"


def test_an_unreachable_prometheus_gives_no_verdict(tmp_path: Path) -> None:
    code = main(
        [
            "report",
            "--period",
            "weekly",
            "--prometheus",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "r.html"),
        ]
    )
    assert code == 0
    parsed = Sections()
    parsed.feed((tmp_path / "r.html").read_text())
    assert {v for v, _ in parsed.sections.values()} == {"no data"}
    assert "Prometheus did not answer" in parsed.text("slow_queries")


NO_QUERY_TEXT = (
    'query=""'  # only pg_stat_statements_query_info has the label: an exporter without include_query
)


def test_without_exported_text_the_report_reads_it_from_the_target(
    report_scenario: ReportScenario, tmp_path: Path
) -> None:
    config = ("--config", str(report_scenario.config))
    read, _ = build(report_scenario, "weekly", tmp_path / "a.html", "--selector", NO_QUERY_TEXT, *config)
    text = read.text("slow_queries")
    assert "rpt_long_query" in text
    # one line, and markup and a cell break shown as the text they are
    assert 'SELECT pg_sleep($1) AS "<i>rpt|odd</i>", $2 AS rpt_second_line' in text
    html = (tmp_path / "a.html").read_text()
    assert "<i>rpt" not in html and "&lt;i&gt;rpt|odd&lt;/i&gt;" in html
    blind, _ = build(report_scenario, "weekly", tmp_path / "b.html", "--selector", NO_QUERY_TEXT)
    text = blind.text("slow_queries")
    assert "rpt_long_query" not in text and "no text: collectors.statements.include_query" in text


def test_a_section_without_all_its_data_gives_no_verdict(
    report_scenario: ReportScenario, tmp_path: Path
) -> None:
    """Vacuum age without the target (statistics age unknown): no `ok`, and the summary says which sections
    it could not judge instead of "Nothing needs attention"."""
    monthly, markdown = build(report_scenario, "monthly", tmp_path / "m.html")
    verdict, _ = monthly.sections["vacuum_age"]
    assert verdict == "no data"
    assert "no data: no read-only access to the target (statistics age); every table" in monthly.text(
        "vacuum_age"
    )
    assert "Nothing needs attention" not in markdown
    assert re.search(
        r"^(Needs attention: .*\. )?No verdict, for lack of data: .*Vacuum and analyze age", markdown, re.M
    )


async def test_index_review_without_usage_data_is_no_verdict_even_with_no_duplicates(
    report_scenario: ReportScenario,
) -> None:
    no_duplicates = Catalog(report_scenario.database, "15.4", duplicates=[], statistics=[])
    report = await build_report(
        "quarterly", report_scenario.prometheus, selector='indexrelname="none"', catalog=no_duplicates
    )
    (review,) = [s for s in report.sections if s.key == "index_review"]
    assert review.verdict == "no data"
    assert review.reason == "no data: pg_index_unused (unused indexes); no duplicate indexes"


def test_charts_of_minutes_of_data_span_the_data(report_scenario: ReportScenario, tmp_path: Path) -> None:
    """The scenario's Prometheus holds minutes of data: the week's charts show those minutes (times without a
    day on the axis), not a dot at the end of an empty week."""
    weekly, _ = build(report_scenario, "weekly", tmp_path / "w.html")
    for key in ("slow_queries", "connection_pool"):
        text = weekly.text(key)
        assert re.search(r"\b\d\d:\d\d(:\d\d)?\b", text) and "(UTC)" in text, key
        assert not re.search(r"\b\d\d-\d\d \d\d:\d\d\b", text), key


async def test_statement_texts_from_the_target_mask_their_string_literals(
    report_scenario: ReportScenario,
) -> None:
    """pg_stat_statements keeps a utility statement as written, a role's password included: never shown."""
    catalog = await catalog_at(report_scenario.target_dsn)
    assert catalog.statements is not None
    owner = f"{report_scenario.database}_owner"
    assert [t for t in catalog.statements.values() if owner in t] == [f"CREATE ROLE {owner} PASSWORD '***'"]
    assert not any(ROLE_PASSWORD in t for t in catalog.statements.values())


HOLDER_APP = "rpt-horizon-holder"
BURNED = 25


def test_the_monthly_report_names_what_holds_back_vacuum(
    report_scenario: ReportScenario,
    pg_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transaction holding a snapshot while others commit: the section shows the horizon's cause and names
    the holder (pid, application, state); over the threshold (lowered here) it needs attention."""
    db = report_scenario.database
    url = report_scenario.prometheus
    with psycopg.connect(pg_server.dsn(db), application_name=HOLDER_APP) as holder:
        holder.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute(b"SELECT count(*) FROM orders")
        pid = holder.info.backend_pid
        with psycopg.connect(pg_server.dsn(db), autocommit=True) as writer:
            for _ in range(BURNED):
                writer.execute(b"SELECT txid_current()")
        held = (
            f'pg_xmin_horizon_holder_info{{cause="transaction",pid="{pid}",application_name="{HOLDER_APP}"}}'
        )
        wait_for(lambda: prometheus_has(url, held), timeout=30)
        wait_for(lambda: prometheus_has(url, f'pg_xmin_horizon_age_xids{{cause="transaction"}} >= {BURNED}'))
        monthly, markdown = build(report_scenario, "monthly", tmp_path / "monthly.html")
        monkeypatch.setattr("responder.report.sections.monthly.HORIZON_XIDS", BURNED - 1)
        report = asyncio.run(build_report("monthly", url))
        holder.rollback()
    verdict, _ = monthly.sections["vacuum_horizon"]
    text = monthly.text("vacuum_horizon")
    named = f"pid {pid}, user postgres, application {HOLDER_APP}, idle in transaction"
    assert verdict == "ok" and "stayed under 10,000,000 transaction IDs" in text
    assert "transaction" in text and named in text and db in text
    assert "vacuum_horizon" in monthly.with_chart
    assert re.search(r"^\| What holds back vacuum \| ok \| ", markdown, re.M), markdown
    (section,) = [s for s in report.sections if s.key == "vacuum_horizon"]
    assert section.verdict == "attention"
    assert (
        section.reason.startswith("the VACUUM horizon reached ") and "held by transaction" in section.reason
    )
    by_cause, holders = section.tables
    assert by_cause.rows[0][0] == "transaction"
    assert int(by_cause.rows[0][2].replace(",", "")) >= BURNED
    backend = f"pid {pid}, user postgres, application {HOLDER_APP}"  # one row whatever its state was
    assert any(row[:3] == ("transaction", backend, db) for row in holders.rows), holders.rows
