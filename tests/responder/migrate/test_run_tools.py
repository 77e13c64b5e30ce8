"""`migrate run` with real tools (psql, dbmate, Alembic) against the test PostgreSQL: each session the tool
opens carries the migration's application_name and timeouts (PGAPPNAME, PGOPTIONS), the run is journaled, the
touched tables are ANALYZEd, and `status` lists it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.responder.migrate.scenario import (
    BIN,
    PASSWORD,
    MigrationDb,
    counted,
    journal_rows,
    migrate,
    write_config,
)

SEEN = (
    "CREATE TABLE seen AS SELECT current_setting('application_name') AS app,"
    " current_setting('lock_timeout') AS lock_timeout, current_setting('statement_timeout') AS statement_timeout"
)


def seen(db: MigrationDb) -> tuple[str, str, str]:
    ((app, lock, statement),) = db.execute("SELECT app, lock_timeout, statement_timeout FROM seen")
    return str(app), str(lock), str(statement)


def test_psql_sessions_carry_the_migration_settings(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db, lock_timeout="3s", statement_timeout="10m")
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-c", SEEN]
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    assert code == 0, out
    assert seen(db) == ("pgwarden-migrate:1", "3s", "10min")
    (row,) = journal_rows(tmp_path)
    assert (row["state"], row["outcome"]) == ("done", "succeeded")
    assert row["labels"]["target"] == "prod"
    result = row["result"]
    assert [a["exit_code"] for a in result["attempts"]] == [0]
    assert result["after"]["analyzed"] == ["public.seen"]
    assert PASSWORD not in repr(row)  # the command's URL is journaled without its password
    assert result["environment"] == {
        "PGAPPNAME": "pgwarden-migrate:1",
        "PGOPTIONS": "-c lock_timeout=3000 -c statement_timeout=600000",
    }
    code, out = migrate("status", "--config", str(config), "--target", "prod")
    assert code == 0 and "\tprod\tsucceeded\tattempts=1\tsnapshot=-\tpsql" in out, out


def test_dbmate_runs_guarded(tmp_path: Path, db: MigrationDb) -> None:
    migrations = tmp_path / "db" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "20260101000000_seen.sql").write_text(
        f"-- migrate:up\n{SEEN};\n\n-- migrate:down\nDROP TABLE seen;\n"
    )
    config = write_config(tmp_path, db, lock_timeout="3s")
    url = db.dsn() + "?sslmode=disable"
    argv = [str(BIN / "dbmate"), "--url", url, "--migrations-dir", str(migrations), "--no-dump-schema", "up"]
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    assert code == 0, out
    app, lock, _ = seen(db)
    # dbmate's driver (lib/pq) reads PGAPPNAME and PGOPTIONS like libpq does
    assert (app, lock) == ("pgwarden-migrate:1", "3s")
    assert db.execute("SELECT version FROM schema_migrations") == [("20260101000000",)]
    # idempotent through its history table: a second run applies nothing and succeeds
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    assert code == 0, out


def alembic_project(folder: Path, upgrade: str) -> Path:
    """A minimal Alembic project whose one revision executes `upgrade`; its alembic.ini."""
    (folder / "alembic" / "versions").mkdir(parents=True)
    ini = folder / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {folder / 'alembic'}\n")
    (folder / "alembic" / "env.py").write_text(
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\n"
        "engine = create_engine(os.environ['DATABASE_URL'])\n"
        "with engine.connect() as connection:\n"
        "    context.configure(connection=connection, target_metadata=None)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n"
    )
    (folder / "alembic" / "script.py.mako").write_text("")
    (folder / "alembic" / "versions" / "0001_first.py").write_text(
        'from alembic import op\nrevision = "0001"\ndown_revision = None\nbranch_labels = None\n'
        "depends_on = None\n\n\ndef upgrade() -> None:\n"
        f"    op.execute({upgrade!r})\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return ini


def test_alembic_runs_guarded(tmp_path: Path, db: MigrationDb, monkeypatch: pytest.MonkeyPatch) -> None:
    ini = alembic_project(tmp_path, SEEN)
    monkeypatch.setenv("DATABASE_URL", db.dsn().replace("postgresql://", "postgresql+psycopg://"))
    config = write_config(tmp_path, db, lock_timeout="3s")
    argv = [str(BIN / "alembic"), "-c", str(ini), "upgrade", "head"]
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    assert code == 0, out
    assert seen(db) == ("pgwarden-migrate:1", "3s", "1h")
    assert db.execute("SELECT version_num FROM alembic_version") == [("0001",)]


def test_the_responder_counts_the_journaled_runs(tmp_path: Path, db: MigrationDb) -> None:
    """The CLI exits; the counter is read from the journal it shares with the responder."""
    config = write_config(tmp_path, db, retries={"attempts": 1})
    for argv in (["true"], ["false"], ["true"]):
        migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    text = counted(tmp_path / "journal.db")
    assert 'pgwarden_migrations_total{outcome="succeeded",target="prod"} 2.0' in text
    assert 'pgwarden_migrations_total{outcome="failed",target="prod"} 1.0' in text
