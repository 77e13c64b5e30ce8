"""`migrate lint` against the real squawk binary and a real PostgreSQL: squawk's own documentation examples, the
size rules on both sides of `large_table_rows`, a long transaction, CONCURRENTLY in a transaction block,
unparseable SQL, and each output format."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden.postgres import SessionOptions, connect
from responder.migrate.lint import APPLICATION_NAME, STATEMENT_TIMEOUT, STATIC_NOTE
from responder.migrate.live import Target
from tests.support.migrate_lint import BIG_ROWS, LARGE_TABLE_ROWS, SMALL_ROWS, LintDb, run_lint
from tests.support.roles import APP_PASSWORD, APP_ROLE

SQUAWK_EXAMPLES = Path(__file__).parent / "fixtures" / "squawk"
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<level>error|warning) (?P<rule>\S+): (?P<message>.*)$")


def example(name: str) -> str:
    return str(SQUAWK_EXAMPLES / name)


def parsed(out: str) -> list[dict[str, str]]:
    """The text format's finding lines as dicts; every other line must be a note."""
    found = []
    for line in out.splitlines():
        if (m := LINE.match(line)) is not None:
            found.append(m.groupdict())
        else:
            assert line.startswith("note: "), line
    return found


def ours(out: str, name: str) -> list[tuple[int, str, str, str]]:
    """(line, level, rule, message) of pgwarden's own findings on file `name` (squawk's rules left out)."""
    squawk_rules = {
        "require-concurrent-index-creation",
        "constraint-missing-not-valid",
        "adding-field-with-default",
        "adding-not-nullable-field",
        "ban-concurrent-index-creation-in-transaction",
        "changing-column-type",
        "require-lock-timeout",
        "require-statement-timeout",
        "prefer-robust-stmts",
        "prefer-bigint-over-int",
    }
    return [
        (int(f["line"]), f["level"], f["rule"], f["message"])
        for f in parsed(out)
        if f["file"] == example(name) and f["rule"] not in squawk_rules
    ]


def squawk_rules_of(out: str, name: str) -> set[str]:
    return {f["rule"] for f in parsed(out) if f["file"] == example(name)}


# ---- squawk's examples ----------------------------------------------------------------------------------------

SQUAWK_RULE = {
    "require-concurrent-index-creation.sql": "require-concurrent-index-creation",
    "constraint-missing-not-valid.sql": "constraint-missing-not-valid",
    "adding-field-with-default.sql": "adding-field-with-default",
    "adding-not-nullable-field.sql": "adding-not-nullable-field",
    "ban-concurrent-index-creation-in-transaction.sql": "ban-concurrent-index-creation-in-transaction",
    "changing-column-type.sql": "changing-column-type",
}


def test_static_lint_runs_squawks_rules_on_its_own_examples() -> None:
    result = run_lint([str(SQUAWK_EXAMPLES)])
    for name, rule in SQUAWK_RULE.items():
        assert rule in squawk_rules_of(result.out, name), (name, result.out)
        ok = name.replace(".sql", ".ok.sql")
        if (SQUAWK_EXAMPLES / ok).exists():
            assert rule not in squawk_rules_of(result.out, ok), (ok, result.out)
    # squawk's lines are 0-based in its JSON: ours are the file's lines
    assert any(
        f["line"] == "2" and f["rule"] == "require-concurrent-index-creation"
        for f in parsed(result.out)
        if f["file"] == example("require-concurrent-index-creation.sql")
    )
    # without a target: the note, and of the live rules only CONCURRENTLY in a transaction block
    assert f"note: {STATIC_NOTE}" in result.out.splitlines()
    live = [f for f in parsed(result.out) if f["rule"] in {"create-index-blocking", "set-not-null"}]
    assert live == []
    assert ours(result.out, "ban-concurrent-index-creation-in-transaction.sql") == [
        (
            5,
            "error",
            "concurrently-in-transaction",
            "CONCURRENTLY cannot run inside a transaction block (BEGIN ... COMMIT in this file): give it its "
            "own migration, outside any transaction",
        )
    ]
    assert ours(result.out, "ban-concurrent-index-creation-in-transaction.ok.sql") == []
    assert result.code == 2  # that one error


def test_static_lint_of_warnings_only_exits_0() -> None:
    result = run_lint([example("require-concurrent-index-creation.sql")])
    assert result.code == 0
    assert {f["level"] for f in parsed(result.out)} == {"warning"}


def test_live_rules_weigh_each_example_against_the_tables_size(
    lint_config: Callable[..., Path], lint_db: LintDb
) -> None:
    config = lint_config()
    result = run_lint(["--config", str(config), "--target", "production", str(SQUAWK_EXAMPLES)])
    assert STATIC_NOTE not in result.out
    big = f"has {BIG_ROWS:,} live rows, over large_table_rows ({LARGE_TABLE_ROWS:,})"
    small = f"has {SMALL_ROWS:,} live rows, at most large_table_rows ({LARGE_TABLE_ROWS:,})"
    expected = {
        "require-concurrent-index-creation.sql": (2, "error", "create-index-blocking", f"app_user {big}"),
        "constraint-missing-not-valid.sql": (2, "warning", "constraint-not-valid", f"accounts {small}"),
        "adding-field-with-default.sql": (3, "error", "volatile-default", f"account {big}"),
        "adding-not-nullable-field.sql": (2, "error", "set-not-null", f"recipe {big}"),
        "changing-column-type.sql": (3, "warning", "alter-column-type", f"users {small}"),
    }
    for name, (line, level, rule, size) in expected.items():
        [(got_line, got_level, got_rule, message)] = ours(result.out, name)
        assert (got_line, got_level, got_rule) == (line, level, rule), (name, message)
        assert message.endswith(size), message
    assert "random is volatile" in ours(result.out, "adding-field-with-default.sql")[0][3]
    # the safe forms: nothing of ours (a constant DEFAULT is not volatile; NOT VALID; CONCURRENTLY outside)
    for name in (
        "require-concurrent-index-creation.ok.sql",
        "constraint-missing-not-valid.ok.sql",
        "adding-field-with-default.ok.sql",
        "ban-concurrent-index-creation-in-transaction.ok.sql",
    ):
        assert ours(result.out, name) == [], name
    assert result.code == 2
    # read-only: nothing changed on the target
    assert lint_db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'app_user'") == [(0,)]
    assert lint_db.execute("SELECT count(*) FROM accounts") == [(SMALL_ROWS,)]


def test_only_small_tables_is_warnings_and_exit_0(lint_config: Callable[..., Path], tmp_path: Path) -> None:
    migration = tmp_path / "0001.sql"
    migration.write_text(
        "ALTER TABLE users ALTER COLUMN id TYPE bigint;\nCREATE INDEX ON accounts (balance);\n"
    )
    result = run_lint(["--config", str(lint_config()), "--target", "production", str(migration)])
    levels = {(f["rule"], f["level"]) for f in parsed(result.out)}
    assert ("alter-column-type", "warning") in levels
    assert ("create-index-blocking", "warning") in levels
    assert result.code == 0, result.out


def test_threshold_comes_from_the_config(lint_config: Callable[..., Path], tmp_path: Path) -> None:
    migration = tmp_path / "0001.sql"
    migration.write_text("CREATE INDEX ON app_user (email);\n")
    config = lint_config(lint={"large_table_rows": BIG_ROWS})  # 50 rows is not more than 50
    result = run_lint(["--config", str(config), "--target", "production", str(migration)])
    [finding] = [f for f in parsed(result.out) if f["rule"] == "create-index-blocking"]
    assert finding["level"] == "warning"
    assert finding["message"].endswith(
        f"app_user has {BIG_ROWS} live rows, at most large_table_rows ({BIG_ROWS})"
    )
    assert result.code == 0


def test_unbatched_writes(lint_config: Callable[..., Path], tmp_path: Path) -> None:
    migration = tmp_path / "0002_backfill.sql"
    migration.write_text(
        "UPDATE events SET kind = 'a';\n"  # every row of a large table
        "UPDATE events SET kind = 'b' WHERE id IS NULL;\n"  # the planner expects every row
        "DELETE FROM events WHERE ctid = '(0,1)';\n"  # one row: a batch
        "DELETE FROM users;\n"  # every row of a small table
    )
    config = lint_config(backfill={"batch_size": 5})
    result = run_lint(["--config", str(config), "--target", "production", str(migration)])
    found = [(int(f["line"]), f["level"]) for f in parsed(result.out) if f["rule"] == "unbatched-write"]
    assert found == [(1, "error"), (2, "error"), (4, "warning")], result.out
    [second] = [
        f["message"] for f in parsed(result.out) if f["rule"] == "unbatched-write" and f["line"] == "2"
    ]
    assert "the planner expects" in second


def test_new_tables_have_no_size(lint_config: Callable[..., Path], tmp_path: Path) -> None:
    migration = tmp_path / "0003.sql"
    migration.write_text("CREATE TABLE fresh (a int);\nCREATE INDEX ON fresh (a);\n")
    result = run_lint(["--config", str(lint_config()), "--target", "production", str(migration)])
    assert [f for f in parsed(result.out) if f["rule"] == "create-index-blocking"] == []
    assert result.code == 0


# ---- a long transaction on the table -------------------------------------------------------------------------


@pytest.fixture
def long_transaction(lint_db: LintDb) -> Iterator[int]:
    """A session of the application's role holding a lock on `events` in an open transaction; its pid."""
    dsn = lint_db.server.dsn(lint_db.name, user=APP_ROLE, password=APP_PASSWORD)
    lint_db.execute(f"GRANT SELECT ON events TO {APP_ROLE}")
    with psycopg.connect(dsn, application_name="billing-report") as conn:
        conn.execute("SELECT count(*) FROM events").fetchall()  # AccessShareLock until the transaction ends
        pid = conn.info.backend_pid
        lint_db.execute("SELECT pg_sleep(0.3)")
        yield pid
        conn.rollback()


def test_access_exclusive_behind_a_long_transaction_names_the_session(
    lint_config: Callable[..., Path], tmp_path: Path, long_transaction: int
) -> None:
    migration = tmp_path / "0004.sql"
    migration.write_text(
        "-- a cheap change, but it needs the table to itself\nALTER TABLE events ADD COLUMN note text;\n"
    )
    config = lint_config(preflight={"max_transaction_age": 0.2})
    result = run_lint(["--config", str(config), "--target", "production", str(migration)])
    [finding] = [f for f in parsed(result.out) if f["rule"] == "long-transaction-lock"]
    assert finding["level"] == "error" and finding["line"] == "2"
    message = finding["message"]
    assert f"pid {long_transaction}, user {APP_ROLE}, application billing-report, age " in message
    assert "ACCESS EXCLUSIVE lock on events" in message
    assert result.code == 2
    # a lighter lock (CREATE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE) is not reported
    migration.write_text("CREATE INDEX CONCURRENTLY ON events (id);\n")
    result = run_lint(["--config", str(config), "--target", "production", str(migration)])
    assert [f for f in parsed(result.out) if f["rule"] == "long-transaction-lock"] == []


def test_younger_transactions_are_not_reported(
    lint_config: Callable[..., Path], tmp_path: Path, long_transaction: int
) -> None:
    migration = tmp_path / "0004.sql"
    migration.write_text("ALTER TABLE events ADD COLUMN note text;\n")
    result = run_lint(["--config", str(lint_config()), "--target", "production", str(migration)])
    assert [f for f in parsed(result.out) if f["rule"] == "long-transaction-lock"] == []


# ---- CONCURRENTLY in a transaction, unparseable SQL, arguments -----------------------------------------------


def test_concurrently_in_a_file_prisma_wraps(tmp_path: Path) -> None:
    migrations = tmp_path / "prisma" / "migrations"
    folder = migrations / "20250101000000_email_index"
    folder.mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    shutil.copy(SQUAWK_EXAMPLES / "require-concurrent-index-creation.ok.sql", folder / "migration.sql")
    result = run_lint([str(migrations)])
    [finding] = [f for f in parsed(result.out) if f["rule"] == "concurrently-in-transaction"]
    assert finding["line"] == "2" and "Prisma runs this migration in one" in finding["message"]
    assert result.code == 2
    (migrations / "migration_lock.toml").unlink()  # not Prisma's layout: no transaction
    assert run_lint([str(migrations)]).code == 0


def test_concurrently_in_a_dbmate_section(tmp_path: Path) -> None:
    migration = tmp_path / "20250101000000_email_index.sql"
    migration.write_text(
        "-- migrate:up\n"
        'CREATE INDEX CONCURRENTLY "email_idx" ON "app_user" ("email");\n'
        "\n"
        "-- migrate:down transaction:false\n"
        'DROP INDEX CONCURRENTLY "email_idx";\n'
    )
    result = run_lint([str(migration)])
    found = [
        (f["line"], f["message"]) for f in parsed(result.out) if f["rule"] == "concurrently-in-transaction"
    ]
    assert [line for line, _ in found] == ["2"]  # dbmate wraps the up section; the down section opts out
    assert "(dbmate runs this migration in one)" in found[0][1]
    migration.write_text(migration.read_text().replace("-- migrate:up", "-- migrate:up transaction:false"))
    assert run_lint([str(migration)]).code == 0


def test_unparseable_sql_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "0005_bad.sql"
    bad.write_text("SELECT 1;\n\nCREATE TABL foo (a int);\n")
    result = run_lint([str(bad)])
    [finding] = [f for f in parsed(result.out) if f["rule"] == "syntax-error"]
    assert (finding["file"], finding["line"], finding["level"]) == (str(bad), "3", "error")
    assert 'syntax error at or near "TABL"' in finding["message"]
    assert "Traceback" not in result.out
    assert result.code == 2
    binary = tmp_path / "0006_binary.sql"
    binary.write_bytes(b"SELECT 1;\n\xff\xfe\n")
    result = run_lint([str(binary)])
    assert [(f["line"], f["message"]) for f in parsed(result.out) if f["rule"] == "syntax-error"] == [
        ("2", "not UTF-8 text")
    ]


def test_bad_arguments_exit_2(tmp_path: Path, lint_config: Callable[..., Path]) -> None:
    assert run_lint([str(tmp_path / "missing.sql")]).code == 2
    assert run_lint(["--target", "production", str(SQUAWK_EXAMPLES)]).code == 2  # no --config
    config = lint_config()
    assert run_lint(["--config", str(config), "--target", "nowhere", str(SQUAWK_EXAMPLES)]).code == 2
    with pytest.raises(SystemExit) as exc:  # argparse's own refusals exit 2 too
        run_lint(["--format", "xml", str(SQUAWK_EXAMPLES)])
    assert exc.value.code == 2


def test_unreachable_target_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.responder import config_file

    config = config_file(tmp_path, playbooks=[])  # its target is 127.0.0.1:1
    result = run_lint(["--config", str(config), "--target", "production", str(SQUAWK_EXAMPLES)])
    assert result.code == 2 and result.out == ""
    assert "cannot reach target production" in capsys.readouterr().err


# ---- output formats -----------------------------------------------------------------------------------------


def test_json_format(lint_config: Callable[..., Path]) -> None:
    args = [
        "--config",
        str(lint_config()),
        "--target",
        "production",
        "--format",
        "json",
        str(SQUAWK_EXAMPLES),
    ]
    result = run_lint(args)
    document = json.loads(result.out)
    assert document["notes"] == []
    assert document["errors"] == sum(f["level"] == "error" for f in document["findings"]) > 0
    index = next(
        f
        for f in document["findings"]
        if f["rule"] == "create-index-blocking"
        and f["file"].endswith("require-concurrent-index-creation.sql")
    )
    assert index["line"] == 2 and index["level"] == "error" and index["source"] == "pgwarden"
    assert {f["source"] for f in document["findings"]} == {"pgwarden", "squawk"}
    assert result.code == 2
    static = json.loads(run_lint(["--format", "json", str(SQUAWK_EXAMPLES)]).out)
    assert static["notes"] == [STATIC_NOTE]


def test_the_session_on_the_target_is_read_only(lint_db: LintDb) -> None:
    async def attempt() -> None:
        options = SessionOptions(APPLICATION_NAME, statement_timeout=STATEMENT_TIMEOUT)
        async with await connect(lint_db.guard_dsn, options) as conn:
            await Target.open(conn)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute("CREATE TABLE lint_wrote (a int)")
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                async with conn.transaction():
                    await conn.execute("DELETE FROM users")

    asyncio.run(attempt())
    assert lint_db.execute("SELECT count(*) FROM users") == [(SMALL_ROWS,)]
