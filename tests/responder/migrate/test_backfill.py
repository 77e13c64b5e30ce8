"""`migrate backfill` against the real PostgreSQL, as the migration role (no superuser): killed with SIGKILL
mid-way and resumed, every row is updated exactly once; a dry run changes nothing; --where is honoured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PostgresServer
from responder.ui.timeline import headline
from tests.responder.migrate.scenario import counted
from tests.support.backfill import action_id, backfill_config, items, run_backfill
from tests.support.journal import journal_sql
from tests.support.migrator import MIGRATOR, as_migrator, make_items, migrator_db
from tests.support.roles import RESPONDER_PASSWORD, RESPONDER_ROLE

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[str]:
    with migrator_db(pg_server) as name:
        yield name


def _counts(server: PostgresServer, db: str) -> dict[int, int]:
    rows = as_migrator(server, db, "SELECT n, count(*) FROM public.items GROUP BY n")
    return {int(n): int(c) for n, c in rows}


def _journal_row(url: str, ident: int) -> tuple[str, dict[str, object]]:
    ((outcome, plan),) = journal_sql(url, "SELECT outcome, plan FROM pgwarden_actions WHERE id = ?", (ident,))
    return str(outcome), json.loads(plan) if isinstance(plan, str) else plan


def test_killed_mid_way_and_resumed_updates_every_row_exactly_once(
    pg_server: PostgresServer, db: str, tmp_path: Path, journal_url: str
) -> None:
    make_items(pg_server, db, 3000)
    config = backfill_config(
        tmp_path, pg_server, db, journal=journal_url, migrations={"backfill": {"pause": "0.05s"}}
    )
    command = [sys.executable, "-m", "responder.migrate.backfill", "--config", str(config)]
    command += items(batch_size=50)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith("batch 8:"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(printed)
    ident = action_id("".join(printed))
    # At the crash: the batches committed, each with its progress; none half done.
    done = _counts(pg_server, db)
    assert set(done) == {0, 1} and 400 <= done[1] < 3000, done
    ((rows_done,),) = as_migrator(pg_server, db, "SELECT rows_done FROM pgwarden.backfill_progress")
    assert rows_done == done[1]

    code, out = run_backfill(config, "--resume", str(ident), "--where", "true")
    assert code == 2 and "give none" in out, out
    code, out = run_backfill(config, "--resume", str(ident), "--batch-size", "700")
    assert code == 0, out
    assert _counts(pg_server, db) == {1: 3000}
    outcome, plan = _journal_row(journal_url, ident)
    assert outcome == "succeeded"
    progress = plan["progress"]
    assert isinstance(progress, dict) and progress["rows_done"] == 3000 == progress["total"]
    assert f"batch {progress['batches']}: 3000/3000 rows (100.0%)" in out

    code, out = run_backfill(config, "--resume", str(ident))
    assert code == 2 and "finished" in out


def test_dry_run_counts_each_batch_and_changes_nothing(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    make_items(pg_server, db, 1000)
    config = backfill_config(tmp_path, pg_server, db)
    args = items("n = 7", batch_size=300, table="items")
    code, out = run_backfill(config, *args, "--where", "id % 2 = 0", "--dry-run")
    assert code == 0, out
    assert _counts(pg_server, db) == {0: 1000}
    assert not as_migrator(pg_server, db, "SELECT 1 FROM pg_namespace WHERE nspname = 'pgwarden'")
    outcome, plan = _journal_row(f"sqlite:///{tmp_path / 'journal.db'}", action_id(out))
    assert outcome == "dry_run"
    effects = plan["effects"]
    assert isinstance(effects, list) and [e["state"] for e in effects] == ["dry-run"] * 4
    assert [e["params"]["rows"] for e in effects] == [150, 150, 150, 50]
    assert effects[0]["statement"].startswith('UPDATE "public"."items" SET "n" = (7) WHERE')


def test_where_selects_the_rows_and_progress_is_journaled(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    make_items(pg_server, db, 1000)
    config = backfill_config(tmp_path, pg_server, db)
    code, out = run_backfill(config, *items(batch_size=400), "--where", "id % 2 = 0")
    assert code == 0, out
    assert _counts(pg_server, db) == {0: 500, 1: 500}
    assert as_migrator(pg_server, db, "SELECT count(*) FROM public.items WHERE n = 1 AND id % 2 = 1") == [
        (0,)
    ]
    outcome, plan = _journal_row(f"sqlite:///{tmp_path / 'journal.db'}", action_id(out))
    assert outcome == "succeeded"
    assert plan["progress"] == {**plan["progress"], "rows_done": 500, "total": 500, "batches": 3}  # type: ignore[dict-item]
    effects = plan["effects"]
    assert isinstance(effects, list) and [e["state"] for e in effects] == ["done"] * 3
    assert "ETA" in out and "rows/s" in out
    # the console's timeline line for it, from the row as journaled
    ((action, result),) = journal_sql(
        f"sqlite:///{tmp_path / 'journal.db'}",
        "SELECT action, result FROM pgwarden_actions WHERE id = ?",
        (action_id(out),),
    )
    row = {"action": action, "outcome": outcome, "plan": plan, "result": json.loads(result)}
    assert (
        headline(row)
        == "backfilled public.items: set `n = n + 1` where `id % 2 = 0` on 500 row(s) in 3 batch(es)"
    )


def test_the_guard_role_needs_only_its_grants_and_membership_of_the_owner(
    pg_roles: PostgresServer, db: str, tmp_path: Path
) -> None:
    """pgwarden_responder: pg_signal_backend, pg_read_all_stats and membership of the migration role that owns
    the database and the table; no superuser, no other grant (the progress schema it creates as a member)."""
    make_items(pg_roles, db, 300)
    pg_roles.execute(f"GRANT {MIGRATOR} TO {RESPONDER_ROLE}")
    try:
        dsn = pg_roles.dsn(db, user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)
        config = backfill_config(tmp_path, pg_roles, db, targets=[{"name": "production", "dsn": dsn}])
        code, out = run_backfill(config, *items(batch_size=100))
        assert code == 0, out
        assert _counts(pg_roles, db) == {1: 300}
    finally:
        pg_roles.execute(f"REVOKE {MIGRATOR} FROM {RESPONDER_ROLE}")


def test_a_long_backfill_keeps_the_journal_row_bounded(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    make_items(pg_server, db, 550)
    config = backfill_config(tmp_path, pg_server, db)
    code, out = run_backfill(config, *items(batch_size=5))
    assert code == 0, out
    assert _counts(pg_server, db) == {1: 550}
    _, plan = _journal_row(f"sqlite:///{tmp_path / 'journal.db'}", action_id(out))
    assert plan["progress"]["batches"] == 110  # type: ignore[index]
    effects = plan["effects"]
    assert isinstance(effects, list) and len(effects) == 100  # the last 100 batches
    assert effects[-1]["params"]["upto"] == "1650"


def test_the_responder_counts_the_journaled_backfills(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    """The CLI exits; `pgwarden_backfills_total` is read from the journal it shares with the responder."""
    make_items(pg_server, db, 100)
    config = backfill_config(tmp_path, pg_server, db)
    assert run_backfill(config, *items(batch_size=50))[0] == 0
    assert run_backfill(config, *items(batch_size=50), "--dry-run")[0] == 0
    text = counted(tmp_path / "journal.db")
    assert 'pgwarden_backfills_total{outcome="succeeded",target="production"} 1.0' in text
    assert 'pgwarden_backfills_total{outcome="dry_run",target="production"} 1.0' in text
    assert "pgwarden_migrations_total{" not in text  # no `migrate run` in this journal
