"""`migrate run --lint PATH...`: the migration's files linted against the target after the pre-flight; an error
refuses the run (exit 2) before the command runs, with or without `--dry-run`; a clean lint lets the dry run print
its plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PostgresServer
from tests.responder.migrate.scenario import MigrationDb, journal_rows, migrate, migration_db, write_config

LARGE_TABLE_ROWS = 10  # `t` has 1,000 rows: large here


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[MigrationDb]:
    for db in migration_db(pg_server):
        db.execute("ANALYZE t")
        yield db


def migration(folder: Path, name: str, sql: str) -> Path:
    path = folder / "migrations" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(sql)
    return path


def run(config: Path, *options: str, marker: Path) -> tuple[int, str]:
    return migrate("run", "--config", str(config), "--target", "prod", *options, "--", "touch", str(marker))


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_lint_error_refuses_the_run_before_the_command(
    tmp_path: Path, db: MigrationDb, dry_run: bool
) -> None:
    config = write_config(tmp_path, db, lint={"large_table_rows": LARGE_TABLE_ROWS})
    path = migration(tmp_path, "001_index.sql", "CREATE INDEX t_v ON t (v);\n")
    marker = tmp_path / "ran"
    code, out = run(config, "--lint", str(path), *(["--dry-run"] if dry_run else []), marker=marker)
    assert code == 2, out
    assert f"{path}:1: error " in out and "1,000 live rows" in out
    assert "refused: lint found 1 error(s) in the migration's files" in out
    assert not marker.exists()
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 't_v'") == [(0,)]
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "guardrail" and "lint found" in row["error"]
    assert row["result"]["lint"]["files"] == [str(path)] and row["result"]["lint"]["errors"] >= 1
    assert "effects" not in row["result"]


def test_a_clean_lint_lets_the_dry_run_print_its_plan(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db, lint={"large_table_rows": LARGE_TABLE_ROWS})
    folder = migration(
        tmp_path, "001_index.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t (v);\n"
    ).parent
    marker = tmp_path / "ran"
    code, out = run(config, "--dry-run", "--lint", str(folder), marker=marker)
    assert code == 0, out
    assert "lint: 0 error(s)" in out and "dry run: the plan (nothing was run)" in out
    plan = json.loads(out[out.index("{") :])
    warnings = out.count(" warning ")  # squawk's advice (timeouts) may warn: never refuses
    assert plan["lint"] == {"files": [str(folder / "001_index.sql")], "errors": 0, "warnings": warnings}
    assert not marker.exists()
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "dry_run"


def test_a_missing_lint_file_is_a_bad_argument(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db)
    marker = tmp_path / "ran"
    code, out = run(config, "--lint", str(tmp_path / "nope.sql"), marker=marker)
    assert code == 2 and "no such file or directory" in out
    assert not marker.exists()
