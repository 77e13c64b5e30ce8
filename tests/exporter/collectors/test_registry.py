"""The registry: every collector found and in order, each exporting the labels its families declare, and a
collector added by dropping one file into a copy of the package tree."""

from __future__ import annotations

import shutil
import textwrap
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from exporter.collectors import COLLECTORS
from exporter.collectors.registry import CollectorClass
from exporter.framework import FRAMEWORK_FAMILIES
from tests.support.exporter import DB_A, Samples, Scraper, assert_declared_labels
from tests.support.exporter_process import REPO, clean_env, run_cli, running_exporter


async def test_every_collector_succeeds_as_pg_monitor_member(
    scraper_factory: Callable[..., Scraper], monitor_dsn: str
) -> None:
    samples = await scraper_factory(monitor_dsn).scrape()
    assert samples.get("pg_up") == 1
    results = {lbl["collector"]: v for lbl, v in samples.all("pg_scrape_collector_success")}
    # every collector on by default, in the registry's order; off by default only those postgres_exporter
    # has off by default and pgwarden did not have before (turned on with collectors.<name>.enabled)
    on = [c.name for c in COLLECTORS if c.options_model().enabled]
    assert list(results) == on
    off = {"buffercache_summary", "process_idle", "stat_checkpointer", "xlog_location"}
    assert {c.name for c in COLLECTORS} - set(on) == off
    assert all(v == 1 for v in results.values()), results
    assert samples.get("pg_exporter_last_scrape_error") == 0


async def test_every_own_collector_only_reads(
    scraper_factory: Callable[..., Scraper], monitor_dsn: str
) -> None:
    """pgwarden's own collectors stay read-only (custom queries alone run read-write, as postgres_exporter
    runs them): every collector on, in sessions whose every transaction is read-only, each still succeeds."""
    options: dict[str, dict[str, Any]] = {c.name: {"enabled": True} for c in COLLECTORS}
    options["statements"]["include_query"] = True
    read_only = monitor_dsn + "?options=" + urllib.parse.quote("-c default_transaction_read_only=on")
    # what each session of the scrape really was: read-only, seen by a statement run as the collectors' are
    probe = {
        "name": "session_read_only",
        "sql": "SELECT (current_setting('transaction_read_only') = 'on')::int AS value",
        "metrics": [{"column": "value", "name": "session_read_only_value"}],
    }
    scraper = scraper_factory(read_only, collectors=options, custom_queries=[probe])
    samples = await scraper.scrape()
    assert samples.get("pg_up") == 1
    assert samples.get("session_read_only_value") == 1
    results = {lbl["collector"]: v for lbl, v in samples.all("pg_scrape_collector_success")}
    assert {c.name for c in COLLECTORS} <= set(results)
    failed = sorted(name for name, ok in results.items() if ok != 1)
    assert not failed, f"collectors that fail in a read-only session: {failed}"


def test_output_order_is_todays_and_names_are_unique() -> None:
    assert [c.name for c in COLLECTORS][:4] == ["postmaster", "settings", "activity", "database"]
    assert [c.order for c in COLLECTORS] == sorted(c.order for c in COLLECTORS)
    families = [f.name for c in COLLECTORS for f in c.families] + [f.name for f in FRAMEWORK_FAMILIES]
    assert len(families) == len(set(families))


@pytest.fixture(scope="module")
def replication_slot(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[None]:
    """A slot (so the slot families have a sample) and a vacuumed table (so last_vacuum has one)."""
    pg_server.execute("SELECT pg_create_physical_replication_slot('exp_labels_slot', true)")
    pg_server.execute("VACUUM small", dbname=DB_A)
    yield
    pg_server.execute("SELECT pg_drop_replication_slot('exp_labels_slot')")


SERIES_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum")}


def _is_own(family_name: str, collector: CollectorClass) -> bool:
    """A family the collector declares (a histogram's or summary's series by their suffixes; `<...>` names
    by their prefix)."""
    return any(
        family_name in {f.name + s for s in SERIES_SUFFIXES.get(f.type, ("",))}
        or ("<" in f.name and family_name.startswith(f.name.split("<")[0]))
        for f in collector.families
    )


@pytest.mark.parametrize("collector", COLLECTORS, ids=[c.name for c in COLLECTORS])
async def test_each_collector_exports_exactly_its_declared_families_and_labels(
    scraper_factory: Callable[..., Scraper], replication_slot: None, collector: CollectorClass
) -> None:
    only = {c.name: {"enabled": c is collector} for c in COLLECTORS}
    only["statements"]["include_query"] = True
    samples = await scraper_factory(collectors=only).scrape()
    assert samples.get("pg_scrape_collector_success", collector=collector.name) == 1
    assert_declared_labels(samples, [*collector.families, *FRAMEWORK_FAMILIES])
    framework = {f.name for f in FRAMEWORK_FAMILIES}
    strays = sorted(n for n in samples.names() if n not in framework and not _is_own(n, collector))
    assert not strays, f"{collector.name} exports families it does not declare: {strays}"


def test_a_family_without_samples_must_say_when_it_may_be_absent() -> None:
    from exporter.exposition import Family

    samples = Samples("pg_up 1\n")
    assert_declared_labels(samples, [Family("pg_missing", "gauge", "h", (), absent_when="never")])
    with pytest.raises(AssertionError, match="pg_missing was not exported"):
        assert_declared_labels(samples, [Family("pg_missing", "gauge", "h")])
    with pytest.raises(AssertionError, match="pg_up"):
        assert_declared_labels(samples, [Family("pg_up", "gauge", "h", ("datname",))])


# --- a collector added by one file ------------------------------------------------------------------------

UPTIME_PROBE = '''
    """A collector that exists only in a copy of the tree: the server's uptime, labelled with an option."""

    from __future__ import annotations

    from collections.abc import Sequence
    from typing import NamedTuple

    from pydantic import Field

    from exporter.collectors.base import Collector, gauge
    from exporter.collectors.options import CollectorOptions
    from exporter.db import Session
    from exporter.exposition import Exposition

    UPTIME = gauge("pg_uptime_probe_seconds", "Seconds since the postmaster started.", ("probe",))


    class UptimeProbeOptions(CollectorOptions):
        probe: str = Field(default="default", min_length=1)


    class Uptime(NamedTuple):
        seconds: float


    class UptimeProbeCollector(Collector[list[Uptime], UptimeProbeOptions]):
        name = "uptime_probe"
        default_ttl = 5.0
        source = "pg_postmaster_start_time()"
        options_model = UptimeProbeOptions
        families = (UPTIME,)

        async def fetch(self, session: Session) -> list[Uptime]:
            return await session.typed(
                Uptime, "SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS seconds"
            )

        def render(self, out: Exposition, results: Sequence[tuple[str, list[Uptime]]]) -> None:
            for _, rows in results:
                for row in rows:
                    out.add(UPTIME, out.labels(UPTIME.labels, (self.options.probe,)), row.seconds)
'''


@pytest.fixture
def tree_with_a_new_collector(tmp_path: Path) -> Path:
    """The exporter's package tree (and pgwarden's, which it imports) copied, plus one new collector file."""
    copy = tmp_path / "tree"
    for package in ("exporter", "pgwarden"):
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "exporter" / "collectors" / "uptime_probe.py").write_text(textwrap.dedent(UPTIME_PROBE).lstrip())
    return copy


def test_a_collector_file_dropped_into_the_tree_is_scraped_and_its_options_validated(
    tree_with_a_new_collector: Path, pg_server: PostgresServer, tmp_path: Path
) -> None:
    tree = tree_with_a_new_collector
    env = clean_env(PYTHONPATH=str(tree))
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"targets: [{{name: t, dsn: '{pg_server.dsn()}'}}]\ncollectors: {{uptime_probe: {{probe: dropped-in}}}}\n"
    )
    checked = run_cli("--config", str(config), "--check-config", env=env, cwd=tree)
    assert checked.returncode == 0, checked.stderr
    assert "collector uptime_probe: server, ttl 5s" in checked.stdout
    with running_exporter(tmp_path, "--config", str(config), env=env, cwd=tree) as exporter:
        status, _, body = exporter.get("/metrics")
    assert status == 200
    samples = Samples(body)
    uptime = samples.get("pg_uptime_probe_seconds", probe="dropped-in")
    assert uptime is not None and uptime > 0
    assert samples.get("pg_scrape_collector_success", collector="uptime_probe") == 1
    assert samples.get("pg_scrape_collector_success", collector="tables") == 1  # the others still there

    config.write_text(
        f"targets: [{{name: t, dsn: '{pg_server.dsn()}'}}]\n"
        "collectors: {uptime_probe: {bogus: 1, probe: ''}, uptime_prob: {}}\n"
    )
    rejected = run_cli("--config", str(config), "--check-config", env=env, cwd=tree)
    assert rejected.returncode == 2
    assert "collectors.uptime_probe.bogus: unknown key" in rejected.stderr
    assert "collectors.uptime_probe.probe: String should have at least 1 character" in rejected.stderr
    assert "collectors.uptime_prob: unknown key" in rejected.stderr
    # and the repository's own tree, without that file, knows no such collector
    plain = run_cli("--config", str(config), "--check-config", env=clean_env())
    assert "collectors.uptime_probe: unknown key" in plain.stderr


# --- what the registry refuses ----------------------------------------------------------------------------

COLLECTOR_MODULE = """
from exporter.collectors.base import Collector
from exporter.collectors.options import CollectorOptions


class {cls}(Collector[list[int], CollectorOptions]):
    name = {name!r}
    order = {order}
    source = "nothing"
    families = ()

    async def fetch(self, session):
        return []

    def render(self, out, results):
        pass
"""


def fake_package(root: Path, modules: dict[str, str]) -> str:
    # a name of its own per test: an imported package stays in sys.modules
    package = root / ("fake_collectors_" + "".join(ch if ch.isalnum() else "_" for ch in root.name))
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, text in modules.items():
        (package / f"{module}.py").write_text(text)
    return package.name


def test_discovery_orders_by_order_then_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter.collectors.registry import discover

    monkeypatch.syspath_prepend(str(tmp_path))
    name = fake_package(
        tmp_path,
        {
            "b": COLLECTOR_MODULE.format(cls="B", name="beta", order=5),
            "a": COLLECTOR_MODULE.format(cls="A", name="alpha", order=5),
            "z": COLLECTOR_MODULE.format(cls="Z", name="zeta", order=1),
            "helpers": "VALUE = 1\n",  # a module without a collector is ignored
        },
    )
    assert [c.name for c in discover(name)] == ["zeta", "alpha", "beta"]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"a": COLLECTOR_MODULE.format(cls="A", name="same", order=1),
          "b": COLLECTOR_MODULE.format(cls="B", name="same", order=2)}, "collector 'same' is defined twice"),
        ({"a": COLLECTOR_MODULE.format(cls="A", name="defaults", order=1)}, "name must be a snake_case word"),
        ({"a": COLLECTOR_MODULE.format(cls="A", name="Not-A-Key", order=1)}, "name must be a snake_case word"),
    ],
)  # fmt: skip
def test_discovery_refuses_clashing_or_unusable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modules: dict[str, str], message: str
) -> None:
    from exporter.collectors.registry import CollectorRegistryError, discover

    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CollectorRegistryError, match=message):
        discover(fake_package(tmp_path, modules))
