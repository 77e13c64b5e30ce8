"""`migrate lint` test helpers: the lint database's tables, and the command run through its argparse
registration."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.pgserver import PostgresServer
from responder.migrate.lint import add_lint_command
from tests.support.roles import RESPONDER_PASSWORD, RESPONDER_ROLE

LARGE_TABLE_ROWS = 10  # the tests' threshold: "large" is 50 rows here, not 100,000
BIG_ROWS = 50
SMALL_ROWS = 3
# table -> rows: the tables squawk's examples name, one side or the other of LARGE_TABLE_ROWS
TABLES = {
    "app_user": ("email text", BIG_ROWS),
    "accounts": ("balance int", SMALL_ROWS),
    "account": ("x int", BIG_ROWS),
    "recipe": ("view_count int", BIG_ROWS),
    "users": ("id int", SMALL_ROWS),
    "events": ("id int, kind text", BIG_ROWS),
}


@dataclass
class LintDb:
    server: PostgresServer
    name: str
    owner: str

    @property
    def guard_dsn(self) -> str:
        return self.server.dsn(self.name, user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self.server.execute(sql, self.name)


@dataclass
class Result:
    code: int
    out: str


LintRunner = Callable[..., Result]


def run_lint(argv: list[str]) -> Result:
    """`migrate lint ARGV` through its argparse registration, called as `migrate`'s CLI calls it (`args.out`,
    `args.func(args)`: the responder's own registry)."""
    parser = argparse.ArgumentParser(prog="pgwarden-responder migrate", exit_on_error=False)
    add_lint_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lint", *argv])
    out = io.StringIO()
    args.out = out
    code = args.func(args)
    return Result(code, out.getvalue())
