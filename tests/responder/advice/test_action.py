"""The `index_advice` action through the responder: an alert naming a database runs it, the journal keeps the
plan and the advice in brief; in dry-run it only says what it would read. No index is created."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from responder.config import Config
from responder.journal import Journal, open_store
from responder.report.builder import build_report
from responder.report.model import Period, PeriodName, Section
from responder.report.sections.advice import index_advice
from responder.report.sections.common import Inputs
from responder.report_command import journal_reader
from tests.responder.advice.workload import NEEDED, Planted
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done

NO_PROMETHEUS = "http://127.0.0.1:9"  # the section reads only the journal


def _config(make_config: ConfigFactory, planted: Planted, mode: str = "enforce") -> Config:
    return make_config(
        mode=mode,
        targets=[{"name": "production", "dsn": planted.dsn()}],
        playbooks=[
            {
                "name": "advise",
                "match": {"alertname": "PostgresSlowQueries"},
                "action": "index_advice",
                "params": {"top": 20},
            }
        ],
    )


async def _run(client_for: ClientFactory, config: Config, planted: Planted) -> dict[str, Any]:
    client = await client_for(config)
    (decision,) = await post_alerts(
        client, alert("PostgresSlowQueries", target="production", datname=planted.database)
    )
    return await wait_done(client, decision["id"], wait=60)


async def test_an_alert_runs_the_advice_on_its_database(
    planted: Planted, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    indexes = planted.index_count()
    row = await _run(client_for, _config(make_config, planted), planted)
    assert row["outcome"] == "succeeded", row
    assert row["plan"] == {"databases": [planted.database], "top": 20, "min_saving": 0.5}
    (database,) = row["result"]["databases"]
    assert database["database"] == planted.database and database["not_planned"] >= 1
    statements = {r["create_statement"] for r in database["recommendations"]}
    assert statements == {
        f'CREATE INDEX CONCURRENTLY ON "public"."{table}" ("{columns[0]}");' for table, columns in NEEDED
    }
    assert [r["write_heavy"] for r in database["recommendations"] if "events" in r["create_statement"]] == [
        True
    ]
    assert planted.index_count() == indexes


async def test_in_dry_run_it_only_says_what_it_would_read(
    planted: Planted, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    row = await _run(client_for, _config(make_config, planted, mode="dry-run"), planted)
    assert row["outcome"] == "dry_run", row
    assert row["result"] == {"would_advise": {"databases": [planted.database], "top": 20, "min_saving": 0.5}}


async def test_the_reports_section_shows_the_latest_advice(
    planted: Planted, make_config: ConfigFactory, client_for: ClientFactory, tmp_path: Path
) -> None:
    """The weekly and quarterly reports' section, built from the journal a real run wrote."""
    row = await _run(client_for, _config(make_config, planted), planted)
    for period in ("weekly", "quarterly"):
        section = await _section(tmp_path / "journal.db", period)  # make_config's journal
        assert section.verdict == "attention", section.reason
        assert f"#{row['id']}" in section.reason and "3 indexes recommended" in section.reason
        (table,) = section.tables
        assert {r[1] for r in table.rows} == {
            f'CREATE INDEX CONCURRENTLY ON "public"."{name}" ("{columns[0]}");' for name, columns in NEEDED
        }
        assert [r[5] for r in table.rows if "events" in r[1]] == ["write-heavy"]
    period = Period("weekly", time.time() + 60)
    failed = {**row, "id": row["id"] + 1, "outcome": "failed", "error": "pg_stat_statements is not created"}
    section = await index_advice(Inputs(cast(Any, None), "", period, advice=[row, failed]), "k", "t")
    assert section.verdict == "attention" and "failed: pg_stat_statements is not created" in section.reason
    empty = await index_advice(Inputs(cast(Any, None), "", period, advice=[]), "k", "t")
    assert empty.verdict == "no data" and "schedule the action" in empty.reason
    no_journal = await index_advice(Inputs(cast(Any, None), "", period), "k", "t")
    assert no_journal.verdict == "no data" and "--config" in no_journal.reason


async def _section(journal_path: Path, period: PeriodName) -> Section:
    journal = Journal(open_store(f"sqlite:///{journal_path}"), "report-test")
    await journal.start()
    try:
        report = await build_report(period, NO_PROMETHEUS, journal=journal_reader(journal))
    finally:
        await journal.close()
    (found,) = [s for s in report.sections if s.key == "index_advice"]
    return found
