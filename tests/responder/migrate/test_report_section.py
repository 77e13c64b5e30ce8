"""The weekly report's "Schema migrations": the `migrate run` and `migrate backfill` rows of the period, as real
runs against the test PostgreSQL journaled them (a SQLite journal), read back through the report's journal
reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

from responder.journal import Journal, open_store
from responder.report.builder import build_report
from responder.report.model import Report, Section
from responder.report_command import journal_reader
from tests.responder.migrate.scenario import MigrationDb, migrate, write_config

NO_PROMETHEUS = "http://127.0.0.1:9"  # the section reads only the journal


def psql(db: MigrationDb, statement: str) -> list[str]:
    return ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-q", "-c", statement]


def weekly(folder: Path) -> Report:
    async def build() -> Report:
        journal = Journal(open_store(f"sqlite:///{folder / 'journal.db'}"), "report-test")
        await journal.start()
        try:
            return await build_report("weekly", NO_PROMETHEUS, journal=journal_reader(journal))
        finally:
            await journal.close()

    return asyncio.run(build())


def section(report: Report) -> Section:
    (found,) = [s for s in report.sections if s.key == "schema_migrations"]
    return found


def test_the_weekly_report_lists_the_periods_migrations_and_backfills(
    tmp_path: Path, db: MigrationDb
) -> None:
    config = write_config(tmp_path, db, retries={"attempts": 1})
    run = ("run", "--config", str(config), "--target", "prod", "--")
    assert migrate(*run, *psql(db, "ALTER TABLE t ADD COLUMN note text"))[0] == 0
    assert migrate(*run, *psql(db, "ALTER TABLE nope ADD COLUMN x int"))[0] == 1
    code, out = migrate(
        "backfill", "--config", str(config), "--target", "prod", "--table", "public.t", "--set", "note = 'x'"
    )
    assert code == 0, out

    found = section(weekly(tmp_path))
    assert found.verdict == "attention"
    assert found.reason == "1 of 3 runs did not finish (#2 failed); 2 runs succeeded"
    (table,) = found.tables
    assert table.columns == ("finished", "id", "target", "what", "outcome", "details")
    rows = {row[1]: row[2:] for row in table.rows}
    assert rows["1"][0] == "prod" and "ALTER TABLE t ADD COLUMN note text" in rows["1"][1]
    assert rows["1"][2:] == ("succeeded", "1 attempt")
    assert rows["2"][2] == "failed" and rows["2"][3].startswith("1 attempt; the command failed (exit 1)")
    assert rows["3"][1:] == ("backfill public.t: set note = 'x'", "succeeded", "1,000 rows")


def test_a_week_without_migrations_is_ok(tmp_path: Path, db: MigrationDb) -> None:
    write_config(tmp_path, db)
    asyncio.run(_create_journal(tmp_path))
    found = section(weekly(tmp_path))
    assert (found.verdict, found.reason) == (
        "ok",
        "no schema migration or backfill was journaled in the period",
    )


async def _create_journal(folder: Path) -> None:
    journal = Journal(open_store(f"sqlite:///{folder / 'journal.db'}"), "report-test")
    await journal.start()
    await journal.close()
