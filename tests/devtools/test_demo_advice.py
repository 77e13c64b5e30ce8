"""The demo's shop database as the demo prepares it (its roles, `devtools.demo_shop`'s tables, data and reads):
`pgwarden-responder advise` with the demo's responder configuration recommends the indexes its reads lack and
none for the decoys the existing indexes serve; docs/advice.md's example is this output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.demo_config import prepare_postgres, responder_config
from devtools.demo_shop import ADVISED, DECOYS, READS, prepare_shop
from devtools.pgserver import PostgresServer, PostgresUnavailable, find_bindir, running_server
from tests.support.services import missing_service

ROOT = Path(__file__).resolve().parents[2]
CREATE = re.compile(r'^  \d+\. CREATE INDEX CONCURRENTLY ON "public"\."(\w+)" \(([^)]*)\);$', re.M)
DOC_COMMAND = "pgwarden-responder advise --config responder.yml --target production"


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[PostgresServer, dict[str, str]]]:
    """A server prepared as `make demo` prepares its own: the roles, then the shop."""
    try:
        find_bindir()
    except PostgresUnavailable as exc:
        missing_service(f"PostgreSQL ({exc})")
    with running_server() as server:
        if not server.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'"):
            missing_service("hypopg (Debian package postgresql-15-hypopg)")
        dsns = prepare_postgres(server)
        prepare_shop(server, server.dsn("shop", "demo_app", "demo-app-pw"))
        yield server, dsns


@pytest.fixture(scope="module")
def advised(demo_server: tuple[PostgresServer, dict[str, str]], tmp_path_factory: Any) -> str:
    """What the docs' command prints: the demo's responder.yml, its environment, the `production` target."""
    server, dsns = demo_server
    workdir = tmp_path_factory.mktemp("demo")
    token = workdir / "token"
    token.write_text("demo-responder-token-change-me\n")
    token.with_name("approver-token").write_text("demo-approver-token-change-me\n")
    config = responder_config(workdir, token, server.port, "http://127.0.0.1:9")
    (workdir / "responder.yml").write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "responder", *DOC_COMMAND.split()[1:]]
    done = subprocess.run(
        argv, cwd=workdir, env={**os.environ, **dsns}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_shops_reads_get_the_indexes_they_lack_and_the_decoys_none(advised: str) -> None:
    assert advised.startswith("index advice for production (PostgreSQL ")
    created = [
        (table, tuple(c.strip('" ') for c in cols.split(","))) for table, cols in CREATE.findall(advised)
    ]
    assert created == ADVISED
    shop = _database(advised, "shop")
    # every read planned; a sequential scan in each but the decoys, which the text leaves out (no findings)
    assert "\n  plans: 6 statements planned, 4 with findings\n" in shop, advised
    for decoy in DECOYS:
        assert decoy not in shop, decoy
    served = {_normal(text) for text in _served(shop)}
    needing = [
        _normal(text) for text, _, _ in READS if not _normal(text).startswith(tuple(map(_normal, DECOYS)))
    ]
    assert len(needing) == 4 and set(needing) <= served, (needing, served)
    assert "not planned" not in shop  # the responder's role may read the tables it plans
    assert "WRITE-HEAVY" not in shop
    # the demo's own `postgres` database, where the target's DSN points, has no hypopg: the advice says so
    assert "no index advice: index advice needs the hypopg extension" in _database(advised, "postgres")


def test_the_docs_example_is_this_output(advised: str) -> None:
    """docs/advice.md shows the command and its output (figures aside): the same indexes in the same order, each
    serving the same statements."""
    doc = (ROOT / "docs" / "advice.md").read_text()
    example = doc.split("## Example", 1)[1]
    assert DOC_COMMAND in example
    block = re.search(r"```\n(index advice for production .*?)```", example, re.S)
    assert block is not None, "docs/advice.md's example output is gone"
    shown = block.group(1)
    assert CREATE.findall(shown) == CREATE.findall(advised)
    assert _served_by_index(_database(shown, "shop")) == _served_by_index(_database(advised, "shop"))


def _served(output: str) -> list[str]:
    """Each recommendation's statements, in order (queryids and figures left out)."""
    recommendations = output.split("  plans: ")[0]
    return re.findall(r"^     - queryid -?\d+: .*?: (.+)$", recommendations, re.M)


def _served_by_index(output: str) -> list[set[str]]:
    """The statements each recommendation serves, in the recommendations' order; within one, the order is by
    total time, which differs from run to run between statements of similar cost, so it is left out."""
    recommendations = output.split("  plans: ")[0]
    return [
        set(_served(part)) for part in re.split(r"^  \d+\. CREATE INDEX", recommendations, flags=re.M)[1:]
    ]


def _database(output: str, name: str) -> str:
    """One database's part of the text output."""
    return output.split(f"\ndatabase {name}\n", 1)[1].split("\ndatabase ", 1)[0]


def _normal(text: str) -> str:
    """A statement with its parameters and constants as `?` (pg_stat_statements makes a LIMIT's a parameter)."""
    return re.sub(r"%s|\$\d+|\b\d+\b", "?", text)
