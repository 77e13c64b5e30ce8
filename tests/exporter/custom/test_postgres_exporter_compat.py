"""A queries.yaml of several shapes, served by pgwarden and by Debian's postgres_exporter 0.11 from the same
file and the same database: the two expositions must agree on every family the file defines (name, TYPE,
HELP, label names and values, sample values)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from devtools.pgserver import PostgresServer
from tests.support.custom_queries import postgres_exporter
from tests.support.exporter import parse_sample
from tests.support.exporter_process import clean_env, running_exporter

QUERIES = """
app_jobs:
  query: |
    SELECT queue, count(*) AS depth, sum(weight) AS weight_sum, max(cost) AS cost_max, bool_and(ok) AS all_ok,
           max(created_at) AS newest, min(created_at)::date AS first_day, sum(tries) * 1000 AS wait,
           '1h'::text AS wait_text, 'x'::text AS junk, 'ready'::text AS state, 2 AS level, sum(tries) AS tries,
           max(weight)::float8 AS heaviest, max(cost)::text AS cost_text, max(created_at) AS newest_label
    FROM jobs GROUP BY queue
  metrics:
    - queue: {usage: LABEL, description: Queue name}
    - depth: {usage: GAUGE, description: Jobs waiting}
    - weight_sum: {usage: COUNTER, description: Summed weight}
    - cost_max: {usage: GAUGE}
    - all_ok: {usage: GAUGE, description: "Every job ok (1), not (0), unknown (NaN)"}
    - newest: {usage: GAUGE, description: Newest job}
    - first_day: {usage: GAUGE, description: First day}
    - wait: {usage: DURATION, description: Wait as a duration}
    - wait_text: {usage: DURATION, description: A duration in text}
    - junk: {usage: DISCARD}
    - state: {usage: MAPPEDMETRIC, description: Mapped state, metric_mapping: {ready: 1}}
    - level: {usage: MAPPEDMETRIC, description: Mapped level}
app_labels:
  query: |
    SELECT max(weight)::float8 AS heaviest, 1000000::float8 AS million, max(tries) AS tries,
           bool_or(ok) AS any_ok, max(created_at) AS newest, NULL::text AS nothing, max(cost) AS cost,
           count(*) AS jobs
    FROM jobs
  cache_seconds: 30
  runonserver: ">=13.0.0"
  metrics:
    - heaviest: {usage: LABEL}
    - million: {usage: LABEL}
    - tries: {usage: LABEL}
    - any_ok: {usage: LABEL}
    - newest: {usage: LABEL}
    - nothing: {usage: LABEL}
    - cost: {usage: LABEL}
    - jobs: {usage: COUNTER, description: Jobs}
app_plain:
  query: |
    SELECT 42 AS answer, -0.5::float8 AS half, 'NaN'::float8 AS nan, 'Infinity'::numeric AS inf,
           'infinity'::timestamptz AS forever, '-infinity'::date AS never, 'infinity'::timestamp AS label
  master: true
  metrics:
    - answer: {usage: GAUGE, description: The answer}
    - label: {usage: LABEL}
app_missing_label:
  query: SELECT 7 AS first, 8 AS value
  metrics:
    - absent: {usage: LABEL, description: Not in the result}
    - value: {usage: GAUGE, description: Labelled from column 0}
app_empty:
  query: SELECT 1 AS one WHERE false
  metrics:
    - one: {usage: GAUGE, description: Never}
app_broken:
  query: SELECT * FROM no_such_table
  metrics:
    - one: {usage: GAUGE, description: Never}
"""

PER_DATABASE = """
per_db:
  query: SELECT current_database() AS datname, count(*) AS tables FROM pg_class WHERE relname = 'jobs'
  metrics:
    - datname: {usage: LABEL, description: Database}
    - tables: {usage: GAUGE, description: Tables named jobs}
per_db_master:
  query: SELECT current_database() AS datname, 1 AS one
  master: true
  metrics:
    - datname: {usage: LABEL, description: Database}
    - one: {usage: GAUGE, description: Only in the DSN's database}
"""

Families = dict[str, tuple[str, str, dict[frozenset[tuple[str, str]], float]]]


def families(text: str, prefixes: tuple[str, ...]) -> Families:
    """name -> (TYPE, HELP, {label set: value}) for the families starting with one of `prefixes`."""
    found: Families = {}
    helps: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, kind = line[len("# TYPE ") :].split(" ")
            if name.startswith(prefixes):
                found[name] = (kind, helps.get(name, ""), {})
        elif line and not line.startswith("#"):
            name, labels, value = parse_sample(line)
            if name in found:
                series = found[name][2]
                key = frozenset(labels.items())
                assert key not in series, f"{name}{labels} twice"
                series[key] = value
    return found


def assert_same(ours: Families, theirs: Families) -> None:
    assert sorted(ours) == sorted(theirs)
    for name, (kind, help_text, series) in theirs.items():
        our_kind, our_help, our_series = ours[name]
        assert (our_kind, our_help) == (kind, help_text), name
        assert set(our_series) == set(series), name
        for labels, value in series.items():
            mine = our_series[labels]
            assert mine == value or (math.isnan(mine) and math.isnan(value)), f"{name}{dict(labels)}"


def test_queries_file_renders_as_postgres_exporter_renders_it(
    pg_server: PostgresServer, custom_databases: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(QUERIES)
    dsn = pg_server.dsn(custom_databases[0])
    scrape_outcome = ("pg_exporter_user_queries_load_error", "pg_exporter_last_scrape_error")
    with postgres_exporter(dsn, path, tmp_path / "pe.log") as reference:
        reference_body = reference.scrape()
        theirs = families(reference_body, ("app_",))
    env = clean_env(DATA_SOURCE_NAME=dsn)
    with running_exporter(tmp_path, "--extend.query-path", str(path), env=env) as exporter:
        status, _, body = exporter.get("/metrics")
    assert status == 200
    ours = families(body, ("app_",))
    assert_same(ours, theirs)
    # the file loaded (filename and SHA-256 as postgres_exporter gives them), and app_broken's failure is the
    # scrape's error on both
    assert_same(families(body, scrape_outcome), families(reference_body, scrape_outcome))
    assert families(body, scrape_outcome)["pg_exporter_last_scrape_error"][2] == {frozenset(): 1}
    # what the comparison covers, so that it cannot pass on two empty expositions
    assert theirs["app_jobs_depth"][0:2] == ("gauge", "Jobs waiting")
    assert theirs["app_jobs_wait_milliseconds"][0] == "gauge"
    assert theirs["app_jobs_heaviest"][0:2] == ("untyped", "Unknown metric from app_jobs")
    assert theirs["app_jobs_weight_sum"][0] == "counter"
    assert "app_jobs_junk" not in theirs and "app_jobs_wait_text_milliseconds" not in theirs
    assert "app_empty_one" not in theirs and "app_broken_one" not in theirs
    (labels,) = theirs["app_labels_jobs"][2]
    assert dict(labels)["million"] == "1e+06" and dict(labels)["nothing"] == ""
    assert dict(next(iter(theirs["app_missing_label_value"][2])))["absent"] == "7"
    assert len(theirs["app_jobs_depth"][2]) == 3
    assert list(theirs["app_plain_forever"][2].values()) == [math.inf]
    assert dict(next(iter(theirs["app_plain_never"][2])))["label"] == "infinity"
    assert re.search(r'^pg_scrape_collector_success\{collector="custom:app_broken"\} 0', body, re.M)
    assert re.search(r'^pg_scrape_collector_success\{collector="custom:app_jobs"\} 1', body, re.M)


def test_auto_discover_runs_in_every_database_but_master_queries(
    pg_server: PostgresServer, custom_databases: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(PER_DATABASE)
    dsn = pg_server.dsn("postgres")
    with postgres_exporter(dsn, path, tmp_path / "pe.log", "--auto-discover-databases") as reference:
        theirs = families(reference.scrape(), ("per_db",))
    env = clean_env(
        DATA_SOURCE_NAME=dsn,
        PG_EXPORTER_EXTEND_QUERY_PATH=str(path),
        PG_EXPORTER_AUTO_DISCOVER_DATABASES="true",
    )
    with running_exporter(tmp_path, env=env) as exporter:
        ours = families(exporter.get("/metrics")[2], ("per_db",))
    assert_same(ours, theirs)
    datnames = {dict(labels)["datname"]: v for labels, v in theirs["per_db_tables"][2].items()}
    assert datnames[custom_databases[0]] == 1 and datnames[custom_databases[1]] == 0
    assert [dict(labels)["datname"] for labels in theirs["per_db_master_one"][2]] == ["postgres"]
