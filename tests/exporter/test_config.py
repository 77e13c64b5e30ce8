"""Exporter configuration: the SPEC's shape parses, every error is reported at once with its key path,
and secrets never show up in errors or in a target's display name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from exporter.assemble import resolve_targets
from exporter.config import (
    ConfigError,
    ExporterConfig,
    config_from_environment,
    load_config_file,
    parse_config,
)
from pgwarden.dsn import describe_dsn
from pgwarden.durations import format_duration, parse_duration

SECRET = "s3cr3t-Pa55word"
URL_DSN = f"postgresql://app:{SECRET}@db.example.com:6432/shop?sslmode=require"
KV_DSN = f"host=10.0.0.5 port=5433 dbname=billing user=app password={SECRET} sslmode=disable"

FULL_CONFIG = """
targets:
  - name: production
    dsn_env: PROD_DSN
    databases: {include: [], exclude: [rdsadmin]}
    rds: {identifier: skillancer-production, region: us-east-1, backup_regions: [eu-west-1, eu-central-1]}
  - name: staging
    dsn: host=staging.internal port=5432 dbname=app user=monitor
    databases: {include: [app, jobs], exclude: []}
    connect_timeout: 1500ms
    pool_size: 4
  - name: reporting
    dsn_file: /run/secrets/reporting_dsn
collectors:
  defaults: {timeout: 5s, ttl: 0s}
  activity: {long_running_thresholds: [60, 120, 300]}
  tables: {ttl: 60s}
  bloat: {ttl: 10m, timeout: 1m30s}
  statements: {include_query: true, query_max_length: 500}
  settings: {enabled: false}
limits: {statements_top_n: 0, tables_per_database: 2000, indexes_per_database: 0}
"""


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def one_target(**fields: Any) -> dict[str, Any]:
    return {"targets": [{"name": "t", "dsn": "host=h dbname=d", **fields}]}


# --- a valid configuration ---------------------------------------------------------------------------------


def test_full_config_in_the_spec_shape_parses() -> None:
    config = parse_config(yaml.safe_load(FULL_CONFIG))
    prod, staging, reporting = config.targets
    assert (prod.name, prod.dsn_env, prod.dsn, prod.dsn_file) == ("production", "PROD_DSN", None, None)
    assert prod.databases.include == () and prod.databases.exclude == ("rdsadmin",)
    assert prod.rds is not None
    assert (prod.rds.identifier, prod.rds.region) == ("skillancer-production", "us-east-1")
    assert prod.rds.backup_regions == ("eu-west-1", "eu-central-1")
    assert prod.connect_timeout == 3.0  # the SPEC's default connect timeout
    assert staging.dsn == "host=staging.internal port=5432 dbname=app user=monitor"
    assert staging.databases.include == ("app", "jobs")
    assert staging.connect_timeout == 1.5 and staging.pool_size == 4 and staging.rds is None
    assert reporting.dsn_file == Path("/run/secrets/reporting_dsn")
    c = config.collectors
    assert (c.defaults.timeout, c.defaults.ttl) == (5.0, 0.0)
    assert c.activity.long_running_thresholds == (60, 120, 300)
    assert c.tables.ttl == 60.0
    assert (c.bloat.ttl, c.bloat.timeout) == (600.0, 90.0)
    assert c.statements.include_query is True and c.statements.query_max_length == 500
    assert c.settings.enabled is False and c.locks.enabled is True
    assert (config.limits.statements_top_n, config.limits.tables_per_database) == (0, 2000)
    assert config.limits.indexes_per_database == 0


def test_defaults_follow_the_spec() -> None:
    config = parse_config(one_target())
    assert config.collectors.activity.long_running_thresholds == (60, 120, 300)
    assert config.collectors.defaults.timeout == 5.0
    assert (config.limits.statements_top_n, config.limits.tables_per_database) == (100, 2000)
    assert config.limits.indexes_per_database == 2000
    assert config.targets[0].databases.include == () and config.targets[0].connect_timeout == 3.0


def test_load_config_file(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(FULL_CONFIG)
    assert load_config_file(path) == parse_config(yaml.safe_load(FULL_CONFIG))


def test_load_config_file_missing_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert len(info.value.errors) == 1 and str(path) in info.value.errors[0]


def test_load_config_file_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("targets: [\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "invalid YAML" in info.value.errors[0]


@pytest.mark.parametrize("document", [[1, 2], "just text", 42])
def test_a_non_mapping_document_is_an_error(document: Any) -> None:
    assert errors_of(document) == ["<root>: the configuration must be a mapping"]


def test_an_empty_document_asks_for_targets() -> None:
    assert errors_of(None) == ["targets: Field required"]


# --- durations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("5m", 300.0),
        ("6h", 21600.0),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "5x", "s", "-5s", "5 s", "5S", "1m30", "ms500", "1.s", "five seconds"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "seconds"), [("1m30s", 90.0), ("500ms", 0.5), (7, 7.0), (2.5, 2.5)])
def test_durations_in_config(value: Any, seconds: float) -> None:
    assert parse_config(one_target(connect_timeout=value)).targets[0].connect_timeout == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", "invalid duration '5x'"),
        ("soon", "invalid duration 'soon'"),
        (-1, "a duration cannot be negative"),
        (True, "a duration is a string like 500ms, 2s, 5m or 6h"),
        ([5], "a duration is a string like 500ms, 2s, 5m or 6h"),
    ],
)
def test_bad_durations_in_config_are_errors(value: Any, message: str) -> None:
    errors = errors_of({**one_target(), "collectors": {"tables": {"ttl": value}}})
    assert len(errors) == 1
    assert errors[0].startswith("collectors.tables.ttl: ") and message in errors[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_durations_are_errors(value: float) -> None:
    errors = errors_of(one_target(connect_timeout=value))
    assert errors and errors[0].startswith("targets.0.connect_timeout: ")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "500ms"), (90, "90s"), (300, "5m"), (21600, "6h"), (0, "0s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- errors: every one at once, with its key path ----------------------------------------------------------


def test_unknown_keys_at_every_depth_are_all_reported() -> None:
    data = {
        "targets": [
            {"name": "a", "dsnn": "x", "dsn": "host=h"},
            {"name": "b", "dsn": "host=h", "rds": {"identifier": "i", "region": "r", "regoin": "x"}},
            {"name": "c", "dsn": "host=h", "databases": {"exclud": ["x"]}},
        ],
        "collectors": {"activty": {}, "tables": {"tll": "5s"}, "defaults": {"timout": "1s"}},
        "limits": {"foo": 1},
        "extra_top_level": True,
    }
    assert sorted(errors_of(data)) == sorted(
        [
            "targets.0.dsnn: unknown key",
            "targets.1.rds.regoin: unknown key",
            "targets.2.databases.exclud: unknown key",
            "collectors.activty: unknown key",
            "collectors.tables.tll: unknown key",
            "collectors.defaults.timout: unknown key",
            "limits.foo: unknown key",
            "extra_top_level: unknown key",
        ]
    )


def test_wrong_types_and_negative_limits_are_all_reported() -> None:
    data = {
        "targets": [{"name": "a", "dsn": "host=h", "pool_size": "many", "databases": {"include": "app"}}],
        "collectors": {
            "activity": {"long_running_thresholds": ["soon"]},
            "statements": {"include_query": "perhaps"},
        },
        "limits": {"statements_top_n": -1, "tables_per_database": -5, "indexes_per_database": "lots"},
    }
    errors = errors_of(data)
    keys = sorted(line.split(": ", 1)[0] for line in errors)
    assert keys == sorted(
        [
            "targets.0.pool_size",
            "targets.0.databases.include",
            "collectors.activity.long_running_thresholds.0",
            "collectors.statements.include_query",
            "limits.statements_top_n",
            "limits.tables_per_database",
            "limits.indexes_per_database",
        ]
    )
    assert "limits.statements_top_n: Input should be greater than or equal to 0" in errors


@pytest.mark.parametrize("limit", ["statements_top_n", "tables_per_database", "indexes_per_database"])
def test_zero_limit_means_no_cap_and_is_valid(limit: str) -> None:
    config = parse_config({**one_target(), "limits": {limit: 0}})
    assert getattr(config.limits, limit) == 0


@pytest.mark.parametrize("thresholds", [[0], [60, -1]])
def test_long_running_thresholds_must_be_positive(thresholds: list[int]) -> None:
    errors = errors_of({**one_target(), "collectors": {"activity": {"long_running_thresholds": thresholds}}})
    assert len(errors) == 1
    assert errors[0].startswith("collectors.activity.long_running_thresholds.")
    assert "greater than 0" in errors[0]


def test_dsn_sources_two_or_none_are_errors_on_their_target() -> None:
    data = {
        "targets": [
            {"name": "ok", "dsn": "host=h"},
            {"name": "two", "dsn": "host=h", "dsn_env": "X"},
            {"name": "none"},
            {"name": "three", "dsn": "host=h", "dsn_env": "X", "dsn_file": "/f"},
        ]
    }
    assert errors_of(data) == [
        "targets.1: give exactly one of dsn, dsn_env or dsn_file",
        "targets.2: give exactly one of dsn, dsn_env or dsn_file",
        "targets.3: give exactly one of dsn, dsn_env or dsn_file",
    ]


def test_duplicate_target_names_are_an_error() -> None:
    data = {"targets": [{"name": n, "dsn": "host=h"} for n in ("a", "b", "a", "b", "c")]}
    [line] = errors_of(data)
    assert "target names must be unique: a, b" in line


def test_duplicate_target_names_are_reported_with_other_errors() -> None:
    data = {"targets": [{"name": "a", "dsn": "host=h"}, {"name": "a", "dsn": "host=h"}], "limits": {"foo": 1}}
    errors = errors_of(data)
    assert "limits.foo: unknown key" in errors
    assert any("target names must be unique: a" in line for line in errors)


@pytest.mark.parametrize(("targets", "message"), [([], "list at least one server"), (None, "valid tuple")])
def test_empty_targets_are_an_error(targets: Any, message: str) -> None:
    [line] = errors_of({"targets": targets})
    assert "targets" in line and message in line


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", 'quo"te', "new\nline"])
def test_target_names_must_be_safe_label_values(name: str) -> None:
    [line] = errors_of({"targets": [{"name": name, "dsn": "host=h"}]})
    assert line.startswith("targets.0.name: ")


def test_rds_needs_identifier_and_region() -> None:
    errors = errors_of(one_target(rds={"backup_regions": ["eu-west-1"]}))
    assert sorted(errors) == [
        "targets.0.rds.identifier: Field required",
        "targets.0.rds.region: Field required",
    ]


def test_errors_never_contain_an_inline_dsn_secret() -> None:
    data = {
        "targets": [
            {"name": "a", "dsn": URL_DSN, "pool_size": 0},
            {"name": "b b", "dsn": KV_DSN, "dsn_env": "X"},
            {"name": "c", "dsn": {"password": SECRET}},
        ]
    }
    errors = errors_of(data)
    assert len(errors) == 3
    assert not any(SECRET in line for line in errors), errors


# --- resolve_targets ---------------------------------------------------------------------------------------


def test_resolve_targets_from_dsn_env_and_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "dsn"
    secret_file.write_text(KV_DSN + "\n")
    config = parse_config(
        {
            "targets": [
                {"name": "inline", "dsn": URL_DSN},
                {"name": "from_env", "dsn_env": "PROD_DSN"},
                {"name": "from_file", "dsn_file": str(secret_file)},
            ]
        }
    )
    inline, env, file = resolve_targets(config, {"PROD_DSN": f"postgresql://u:{SECRET}@prod:5432/app"})
    assert (inline.name, inline.conninfo, inline.display) == ("inline", URL_DSN, "db.example.com:6432/shop")
    assert (env.name, env.display) == ("from_env", "prod:5432/app")
    assert env.conninfo == f"postgresql://u:{SECRET}@prod:5432/app"
    assert (file.name, file.conninfo, file.display) == ("from_file", KV_DSN, "10.0.0.5:5433/billing")
    assert env.config is config.targets[1]
    for target in (inline, env, file):
        assert SECRET not in target.display and SECRET not in repr(target.display)


def test_resolve_targets_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGW_TEST_DSN", "postgresql://h:1/d")
    [target] = resolve_targets(parse_config({"targets": [{"name": "t", "dsn_env": "PGW_TEST_DSN"}]}))
    assert target.display == "h:1/d"


def test_resolve_targets_reports_every_missing_source_by_key(tmp_path: Path) -> None:
    config = parse_config(
        {
            "targets": [
                {"name": "a", "dsn_env": "PGW_UNSET_DSN"},
                {"name": "b", "dsn_env": "PGW_EMPTY_DSN"},
                {"name": "c", "dsn_file": str(tmp_path / "missing")},
                {"name": "d", "dsn_file": str(tmp_path)},
                {"name": "e", "dsn": URL_DSN},
            ]
        }
    )
    with pytest.raises(ConfigError) as info:
        resolve_targets(config, {"PGW_EMPTY_DSN": ""})
    errors = info.value.errors
    assert [line.split(": ", 1)[0] for line in errors] == [
        "targets.0.dsn_env",
        "targets.1.dsn_env",
        "targets.2.dsn_file",
        "targets.3.dsn_file",
    ]
    assert "PGW_UNSET_DSN" in errors[0] and "not set" in errors[0]
    assert str(tmp_path / "missing") in errors[2]


def test_resolve_targets_unparseable_dsn_hides_its_text(tmp_path: Path) -> None:
    bad_file = tmp_path / "dsn"
    bad_file.write_text(f"host=h password='{SECRET}")  # unterminated quote
    config = parse_config(
        {
            "targets": [
                {"name": "env", "dsn_env": "BAD"},
                {"name": "file", "dsn_file": str(bad_file)},
                {"name": "inline", "dsn": f"user=u password={SECRET} = ="},
            ]
        }
    )
    with pytest.raises(ConfigError) as info:
        resolve_targets(config, {"BAD": f"postgresql://u:{SECRET}@h/db?bogus=1"})
    errors = info.value.errors
    assert [line.split(": ", 1)[0] for line in errors] == [
        "targets.0.dsn_env",
        "targets.1.dsn_file",
        "targets.2.dsn",
    ]
    assert not any(SECRET in line for line in errors)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("source", ["dsn", "dsn_file"])
def test_an_empty_dsn_is_an_error_not_a_missing_target(source: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    value = "" if source == "dsn" else str(empty)
    config = parse_config({"targets": [{"name": "a", source: value}, {"name": "b", "dsn": "host=h"}]})
    with pytest.raises(ConfigError) as info:
        resolve_targets(config, {})
    assert info.value.errors[0].startswith(f"targets.0.{source}")


# --- describe_dsn ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "display"),
    [
        (URL_DSN, "db.example.com:6432/shop"),
        (KV_DSN, "10.0.0.5:5433/billing"),
        (f"postgresql://monitor:{SECRET}@127.0.0.1/postgres", "127.0.0.1:5432/postgres"),
        (f"postgres://monitor:{SECRET}@[::1]:5433/app", "::1:5433/app"),
        (f"postgresql://u:{SECRET.replace('-', '%2D')}@h/d", "h:5432/d"),
        (f"host=h user=alice password='{SECRET} with spaces'", "h:5432/alice"),
        (f"hostaddr=10.1.2.3 password={SECRET}", "10.1.2.3:5432/postgres"),
        (f"postgresql://u:{SECRET}@", "localhost:5432/u"),
        (f"host=h password='{SECRET}", "<unparseable dsn>"),
        (f"password={SECRET} bogus=1", "<unparseable dsn>"),
    ],
)
def test_describe_dsn_is_host_port_dbname_only(dsn: str, display: str) -> None:
    assert describe_dsn(dsn) == display
    assert SECRET not in describe_dsn(dsn)
    assert "monitor" not in describe_dsn(dsn)


# --- zero-config mode --------------------------------------------------------------------------------------


def names_and_dsns(config: ExporterConfig) -> list[tuple[str, str | None]]:
    return [(t.name, t.dsn) for t in config.targets]


def test_zero_config_one_dsn() -> None:
    config = config_from_environment({"DATA_SOURCE_NAME": URL_DSN})
    assert names_and_dsns(config) == [("db.example.com:6432/shop", URL_DSN)]
    assert config.limits.statements_top_n == 100  # everything else at its default


def test_zero_config_several_comma_separated_dsns() -> None:
    other = f"postgresql://u:{SECRET}@replica:5432/shop"
    config = config_from_environment({"DATA_SOURCE_NAME": f" {URL_DSN} , {other},"})
    assert names_and_dsns(config) == [("db.example.com:6432/shop", URL_DSN), ("replica:5432/shop", other)]
    assert not any(SECRET in t.name for t in config.targets)


def test_zero_config_duplicate_names_are_numbered() -> None:
    first = "postgresql://a:pw1@h:5432/db"
    second = "postgresql://b:pw2@h:5432/db"
    config = config_from_environment({"DATA_SOURCE_NAME": f"{first},{second},{first}"})
    names = [t.name for t in config.targets]
    assert names[0] == "h:5432/db"
    assert len(set(names)) == 3 and all(n.startswith("h:5432/db") for n in names)


def test_zero_config_uri_with_user_and_password_file(tmp_path: Path) -> None:
    pass_file = tmp_path / "pass"
    pass_file.write_text(SECRET + "\n")
    env = {
        "DATA_SOURCE_URI": "db.internal:5433/shop?sslmode=disable",
        "DATA_SOURCE_USER": "monitor",
        "DATA_SOURCE_PASS_FILE": str(pass_file),
    }
    config = config_from_environment(env)
    [target] = resolve_targets(config, {})
    assert target.name == "db.internal:5433/shop" == target.display
    params = conninfo_to_dict(target.conninfo)
    assert params["user"] == "monitor"
    assert params["password"] == SECRET  # stripped of the file's newline
    assert (params["host"], params["port"], params["dbname"], params["sslmode"]) == (
        "db.internal",
        "5433",
        "shop",
        "disable",
    )


def test_zero_config_uri_with_user_file_and_password(tmp_path: Path) -> None:
    user_file = tmp_path / "user"
    user_file.write_text("filed_user")
    env = {
        "DATA_SOURCE_URI": "postgresql://h1:5432/a,h2:5432/b",
        "DATA_SOURCE_USER_FILE": str(user_file),
        "DATA_SOURCE_PASS": SECRET,
    }
    config = config_from_environment(env)
    assert [t.name for t in config.targets] == ["h1:5432/a", "h2:5432/b"]
    for t in config.targets:
        assert t.dsn is not None
        params = conninfo_to_dict(t.dsn)
        assert (params["user"], params["password"]) == ("filed_user", SECRET)


def test_zero_config_unreadable_password_file_names_the_variable(tmp_path: Path) -> None:
    env = {"DATA_SOURCE_URI": "h:5432/d", "DATA_SOURCE_PASS_FILE": str(tmp_path / "nope")}
    with pytest.raises(ConfigError) as info:
        config_from_environment(env)
    [line] = info.value.errors
    assert line.startswith("DATA_SOURCE_PASS_FILE: ")


def test_data_source_name_wins_over_uri() -> None:
    config = config_from_environment({"DATA_SOURCE_NAME": URL_DSN, "DATA_SOURCE_URI": "other:1/x"})
    assert [t.name for t in config.targets] == ["db.example.com:6432/shop"]


@pytest.mark.parametrize(
    "env", [{}, {"DATA_SOURCE_NAME": ""}, {"DATA_SOURCE_NAME": " , "}, {"DATA_SOURCE_USER": "u"}]
)
def test_zero_config_with_nothing_set_names_data_source_name(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_environment(env)
    [line] = info.value.errors
    assert line.startswith("DATA_SOURCE_NAME: ")
