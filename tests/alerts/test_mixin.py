"""The postgres_exporter mixin's alerts and recording rules (a copy at upstream's main, in
tests/fixtures/postgres_exporter/mixin) against pgwarden: every family they select is one pgwarden exports,
except the few current postgres_exporter does not export either (old queries.yaml names), each with its reason."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from devtools.pgserver import PostgresServer
from devtools.upstream_families import ours, upstream_families
from tests.exporter.aws.test_qonto_alerts import input_series, promtool, selector_texts
from tests.support.exporter import Scraper, make_config
from tests.support.services import installed

MIXIN = Path(__file__).resolve().parents[1] / "fixtures" / "postgres_exporter" / "mixin"
FILES = (MIXIN / "alerts.yaml", MIXIN / "rules.yaml")
_NAME = re.compile(r"(?<![\w:])(pg_[a-z0-9_]+)")
# Selected by the mixin, exported by no current postgres_exporter collector either: why pgwarden has none.
UNSERVED = {
    "pg_replication_lag": "an old queries.yaml name; today's is pg_replication_lag_seconds",
    **{
        f"pg_statio_user_tables_{kind}_blks_{what}": "an old queries.yaml name; today's is "
        f"pg_statio_user_tables_{kind}_blocks_{what}"
        for kind in ("heap", "idx")
        for what in ("hit", "read")
    },
}


def selected() -> set[str]:
    names: set[str] = set()
    for path in FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names |= set(_NAME.findall(rule["expr"]))
    return names


def test_the_copy_is_valid_rules() -> None:
    promtool = installed("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "rules", *map(str, FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_family_the_mixin_selects_is_exported() -> None:
    mine = set(ours())
    names = selected()
    assert {"pg_up", "pg_stat_activity_count", "pg_replication_slots_active"} <= names  # it read something
    for name in sorted(names):
        exported = name in mine or (name.startswith("pg_settings_") and "pg_settings_<name>" in mine)
        assert exported or name in UNSERVED, f"the mixin selects {name}, which pgwarden does not export"
    # served by today's postgres_exporter on no version pgwarden supports (13-18)
    upstream = {str(f["name"]) for f in upstream_families() if f["versions"] != "< 10"}
    for name, reason in UNSERVED.items():
        assert name in names, f"{name} is no longer in the mixin: drop it from UNSERVED"
        assert name not in upstream and name not in mine, (name, reason)


async def test_every_selector_of_the_mixin_matches_a_series_pgwarden_serves(
    pg_server: PostgresServer,
) -> None:
    """Each vector selector of the mixin's alerts and recording rules, as written (its label matchers too),
    evaluated by promtool on what pgwarden exported from the test server, picks at least one series, but for
    the UNSERVED names and the rules' own recorded series."""
    pg_server.execute("CREATE TABLE IF NOT EXISTS mixin_rows (id int PRIMARY KEY)")
    pg_server.execute("SELECT pg_create_physical_replication_slot('mixin_slot', true)")
    scraper = Scraper(make_config(pg_server.dsn("postgres")))
    try:
        samples = await scraper.scrape()
    finally:
        await scraper.close()
        pg_server.execute("SELECT pg_drop_replication_slot('mixin_slot')")
        pg_server.execute("DROP TABLE mixin_rows")
    assert samples.get("pg_up") == 1
    groups = [g for path in FILES for g in yaml.safe_load(path.read_text())["groups"]]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    selectors = {
        (name, braces)
        for g in groups
        for rule in g["rules"]
        for name, braces in selector_texts(rule["expr"])
        if name not in UNSERVED and name not in recorded
    }
    names = {name for name, _ in selectors}
    assert len(names) >= 15, sorted(names)  # it read the rules
    cases = [
        {"expr": f"group({name}{braces})", "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 1}]}
        for name, braces in sorted(selectors)
    ]
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": input_series(samples, names), "promql_expr_test": cases}
        ],
    }
    path = Path(tempfile.mkdtemp(prefix="pgwarden-mixin-")) / "mixin.test.yml"
    try:
        path.write_text(yaml.safe_dump(test, sort_keys=False))
        assert "SUCCESS" in promtool("test", "rules", str(path))
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
