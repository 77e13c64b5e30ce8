"""`migrate lint --format github` parsed back as GitHub's runner parses workflow commands, with hostile file names
and SQL: newlines, `::`, `%`, `,` and `:` must not end, split or forge an annotation."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from responder.migrate.findings import Finding, escape_data, escape_property, render
from responder.migrate.lint import STATIC_NOTE
from tests.support.migrate_lint import LintDb, run_lint

COMMAND = re.compile(r"^::(?P<command>[a-z]+)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def annotations(out: str) -> list[dict[str, str]]:
    """Each line as GitHub's runner reads a workflow command: `::command k=v,k=v::message`, unescaped."""
    parsed = []
    for line in out.splitlines():
        match = COMMAND.match(line)
        assert match is not None, f"not a workflow command: {line!r}"
        item = {"command": match["command"], "message": unescape_data(match["message"])}
        for pair in filter(None, (match["properties"] or "").split(",")):
            key, _, value = pair.partition("=")
            item[key] = unescape_property(value)
        parsed.append(item)
    return parsed


def test_escaping_round_trips() -> None:
    hostile = "a%0A,b:c::error file=x::forged\r\n100%"
    assert unescape_property(escape_property(hostile)) == hostile
    assert unescape_data(escape_data(hostile)) == hostile
    assert "\n" not in escape_data(hostile) and "," not in escape_property(hostile)
    assert ":" not in escape_property(hostile)


def test_render_each_format_from_the_same_findings() -> None:
    findings = [
        Finding("m/1.sql", 3, "warning", "prefer-robust-stmts", "w", "squawk"),
        Finding("m/1.sql", 2, "error", "set-not-null", "line one\nline two"),
    ]
    text = render(findings, ["a note"], "text").splitlines()
    assert text == [
        "m/1.sql:2: error set-not-null: line one\\nline two",
        "m/1.sql:3: warning prefer-robust-stmts: w",
        "note: a note",
    ]
    github = annotations(render(findings, ["a note"], "github"))
    assert github == [
        {
            "command": "error",
            "file": "m/1.sql",
            "line": "2",
            "title": "pgwarden set-not-null",
            "message": "line one\nline two",
        },
        {
            "command": "warning",
            "file": "m/1.sql",
            "line": "3",
            "title": "squawk prefer-robust-stmts",
            "message": "w",
        },
        {"command": "notice", "message": "a note"},
    ]
    assert render([], [], "text") == ""


def test_github_format_static(tmp_path: Path) -> None:
    migration = tmp_path / "0001.sql"
    migration.write_text("BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n")
    result = run_lint(["--format", "github", str(migration)])
    parsed = annotations(result.out)
    errors = [a for a in parsed if a["command"] == "error"]
    assert [(a["file"], a["line"], a["title"]) for a in errors] == [
        (str(migration), "2", "pgwarden concurrently-in-transaction")
    ]
    assert {"command": "notice", "message": STATIC_NOTE} in parsed
    assert result.code == 2


def test_hostile_file_names_and_sql(
    tmp_path: Path, lint_config: Callable[..., Path], lint_db: LintDb
) -> None:
    # a table whose name carries a newline and a forged workflow command, big enough to be an error
    table = "evil\n::error file=forged.sql,line=1::pwned, 100%"
    quoted = '"' + table.replace('"', '""') + '"'
    lint_db.execute(f"CREATE TABLE {quoted} (a int)")
    lint_db.execute(f"INSERT INTO {quoted} SELECT FROM generate_series(1, 50)")
    lint_db.execute(f"ALTER TABLE {quoted} OWNER TO {lint_db.owner}")
    lint_db.execute(f"ANALYZE {quoted}")
    folder = tmp_path / "we,ird:dir"
    folder.mkdir()
    names = ["-rf.sql", "a,b:c%0A.sql", "new\nline::error file=x::y.sql", "%25 percent.sql"]
    for name in names:
        (folder / name).write_text(f"-- {name!r}\nCREATE INDEX ON {quoted} (a);\n")
    args = ["--config", str(lint_config()), "--target", "production", "--format", "github", str(folder)]
    result = run_lint(args)
    parsed = annotations(result.out)
    assert all(a["file"] != "forged.sql" for a in parsed)
    ours = [a for a in parsed if a.get("title") == "pgwarden create-index-blocking"]
    assert sorted(a["file"] for a in ours) == sorted(str(folder / n) for n in names)
    for a in ours:
        assert a["command"] == "error" and a["line"] == "2"
        assert a["message"].startswith("CREATE INDEX without CONCURRENTLY")
        assert f"{table} has 50 live rows" in a["message"]
    # squawk saw every file too, and its findings come back under the names we gave it
    squawked = {a["file"] for a in parsed if a.get("title", "").startswith("squawk ")}
    assert squawked == {str(folder / n) for n in names}
    assert result.code == 2
    # the text format keeps one finding per line
    text = run_lint(["--config", str(lint_config()), "--target", "production", str(folder)])
    for line in text.out.splitlines():
        assert line.startswith(str(folder)), line
