"""postgres_exporter's command line and `PG_EXPORTER_*` environment, accepted by pgwarden-exporter.

Every flag of postgres_exporter (main as of 0.20.1, `cmd/postgres_exporter/main.go`) parses here and acts on
pgwarden's configuration: `--[no-]collector.<name>` on the collectors and families that stand for that
collector (`exporter.upstream_collectors`), the `stat_statements` options on the statements collector, the
database lists on every target. A flag given on the command line wins over its environment variable, and
both over the `--config` file, which they amend. As kingpin does for postgres_exporter, every boolean flag
also has its `--no-` form, and a boolean variable is read as Go's strconv.ParseBool reads it. Flags removed
upstream are accepted with a warning that names their replacement; a flag neither program knows is an error
naming it (argparse's).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exporter.collectors.options import CollectorOptions
from exporter.collectors.registry import COLLECTORS, CollectorsBase
from exporter.config import ConfigError, ExporterConfig
from exporter.custom.queries_file import QueryFile
from exporter.probe import ProbeSettings
from exporter.serving import ServeOptions, render_labels
from exporter.target import DatabasesConfig
from exporter.upstream_collectors import DEFAULT_METRICS, UPSTREAM_BY_NAME, UPSTREAM_COLLECTORS, Part
from exporter.upstream_config import load_upstream_config
from pgwarden.durations import parse_duration

DEFAULT_CONFIG_FILE = "postgres_exporter.yml"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool, as kingpin reads a bool variable
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """postgres_exporter's flags (besides --extend.query-path, --auto-discover-databases and the common ones)."""
    group = parser.add_argument_group("postgres_exporter's flags")
    for upstream in UPSTREAM_COLLECTORS:
        state = "enabled" if upstream.default else "disabled"
        group.add_argument(
            f"--collector.{upstream.name}",
            dest=f"collector__{upstream.name}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"postgres_exporter's {upstream.name} collector (its default: {state})",
        )
    s = "--collector.stat_statements."
    group.add_argument(s + "include_query", dest="pe_include_query", action=argparse.BooleanOptionalAction)
    group.add_argument(s + "query_length", dest="pe_query_length", type=_positive_int, metavar="N")
    group.add_argument(s + "limit", dest="pe_limit", type=_positive_int, metavar="N")
    group.add_argument(s + "exclude_databases", dest="pe_statements_exclude_databases", metavar="LIST")
    group.add_argument(s + "exclude_users", dest="pe_statements_exclude_users", metavar="LIST")
    group.add_argument(
        "--collector.long_running_transactions.threshold", dest="pe_long_running", type=_duration, metavar="D"
    )
    group.add_argument(
        "--config.file",
        dest="config_file",
        metavar="FILE",
        help=f"postgres_exporter's configuration (auth_modules for /probe); default {DEFAULT_CONFIG_FILE}, "
        "optional; --config is pgwarden's own and both may be given",
    )
    group.add_argument("--web.telemetry-path", dest="pe_telemetry_path", metavar="PATH")
    group.add_argument(
        "--web.systemd-socket", dest="pe_systemd_socket", action=argparse.BooleanOptionalAction
    )
    for name in ("disable-default-metrics", "disable-settings-metrics"):
        group.add_argument(
            f"--{name}", dest="pe_" + name.replace("-", "_"), action=argparse.BooleanOptionalAction
        )
    group.add_argument("--exclude-databases", dest="pe_exclude_databases", metavar="LIST")
    group.add_argument("--include-databases", dest="pe_include_databases", metavar="LIST")
    group.add_argument("--metric-prefix", dest="pe_metric_prefix", metavar="PREFIX")
    group.add_argument("--constantLabels", dest="pe_constant_labels", metavar="LIST")
    group.add_argument("--collection-timeout", dest="pe_collection_timeout", type=_duration, metavar="D")
    group.add_argument(
        "--auto-discover-databases.max-concurrency", dest="pe_max_concurrency", type=_positive_int
    )
    group.add_argument("--wrap-large-counters", dest="pe_wrap", action=argparse.BooleanOptionalAction)
    group.add_argument(
        "--dumpmaps",
        dest="pe_dumpmaps",
        action=argparse.BooleanOptionalAction,
        help="print the families and exit",
    )


@dataclass
class UpstreamFlags:
    """What postgres_exporter's flags and environment asked for; None and empty mean "not given"."""

    collectors: dict[str, bool] = field(default_factory=dict)
    disable_default_metrics: bool = False
    disable_settings_metrics: bool = False
    auto_discover_databases: bool = False
    telemetry_path: str = "/metrics"
    systemd_socket: bool = False
    config_file: Path | None = None
    config_file_given: bool = False
    include_databases: tuple[str, ...] = ()
    exclude_databases: tuple[str, ...] = ()
    metric_prefix: str = "pg"
    constant_labels: dict[str, str] = field(default_factory=dict)
    collection_timeout: float | None = None
    max_concurrency: int | None = None
    statements: dict[str, Any] = field(default_factory=dict)
    statements_limit: int | None = None
    long_running_threshold: float | None = None
    dumpmaps: bool = False
    warnings: list[str] = field(default_factory=list)


def read_flags(args: argparse.Namespace, env: Mapping[str, str]) -> UpstreamFlags:
    """The flags and their `PG_EXPORTER_*` variables; raises ConfigError naming a bad value."""
    errors: list[str] = []
    flags = UpstreamFlags()
    for upstream in UPSTREAM_COLLECTORS:
        value = getattr(args, f"collector__{upstream.name}")
        if value is not None:
            flags.collectors[upstream.name] = value
            if value and not upstream.parts:
                flags.warnings.append(f"--collector.{upstream.name}: ignored, {upstream.note}")

    def env_bool(name: str) -> bool:
        text = env.get(name, "")
        if text in ("", *_FALSE):
            return False
        if text in _TRUE:
            return True
        errors.append(f"{name}: {text!r} is not a boolean (true or false)")
        return False

    def pick(value: str | None, name: str) -> str | None:
        return value if value is not None else (env.get(name) or None)

    def flag_or_env(value: bool | None, name: str) -> bool:
        return value if value is not None else env_bool(name)

    flags.disable_default_metrics = flag_or_env(
        args.pe_disable_default_metrics, "PG_EXPORTER_DISABLE_DEFAULT_METRICS"
    )
    flags.disable_settings_metrics = flag_or_env(
        args.pe_disable_settings_metrics, "PG_EXPORTER_DISABLE_SETTINGS_METRICS"
    )
    flags.auto_discover_databases = flag_or_env(
        args.auto_discover_databases, "PG_EXPORTER_AUTO_DISCOVER_DATABASES"
    )
    if flags.disable_settings_metrics:
        flags.warnings.append(
            "--disable-settings-metrics (PG_EXPORTER_DISABLE_SETTINGS_METRICS) was removed in postgres_exporter "
            "0.20: use --no-collector.settings; it is taken as that"
        )
    flags.telemetry_path = pick(args.pe_telemetry_path, "PG_EXPORTER_WEB_TELEMETRY_PATH") or "/metrics"
    if not flags.telemetry_path.startswith("/"):
        errors.append(f"--web.telemetry-path: {flags.telemetry_path!r} must start with /")
    flags.systemd_socket = bool(args.pe_systemd_socket)
    flags.config_file_given = args.config_file is not None
    flags.config_file = Path(args.config_file or DEFAULT_CONFIG_FILE) if args.config_file != "" else None
    flags.include_databases = split_list(pick(args.pe_include_databases, "PG_EXPORTER_INCLUDE_DATABASES"))
    flags.exclude_databases = split_list(pick(args.pe_exclude_databases, "PG_EXPORTER_EXCLUDE_DATABASES"))
    flags.metric_prefix = pick(args.pe_metric_prefix, "PG_EXPORTER_METRIC_PREFIX") or "pg"
    if not _LABEL_NAME.match(flags.metric_prefix):
        errors.append(f"--metric-prefix: {flags.metric_prefix!r} is not a metric name prefix")
    labels = pick(args.pe_constant_labels, "PG_EXPORTER_CONSTANT_LABELS") or ""
    flags.constant_labels = parse_constant_labels(labels, errors, flags.warnings)
    timeout = args.pe_collection_timeout
    if timeout is None and env.get("PG_EXPORTER_COLLECTION_TIMEOUT"):
        try:
            timeout = _duration(env["PG_EXPORTER_COLLECTION_TIMEOUT"])
        except argparse.ArgumentTypeError as exc:
            errors.append(f"PG_EXPORTER_COLLECTION_TIMEOUT: {exc}")
    flags.collection_timeout = timeout
    flags.max_concurrency = args.pe_max_concurrency
    if args.pe_include_query is not None:
        flags.statements["include_query"] = args.pe_include_query
    if args.pe_query_length is not None:
        flags.statements["query_max_length"] = args.pe_query_length
    if args.pe_statements_exclude_databases is not None:
        flags.statements["exclude_databases"] = split_list(args.pe_statements_exclude_databases)
    if args.pe_statements_exclude_users is not None:
        flags.statements["exclude_users"] = split_list(args.pe_statements_exclude_users)
    flags.statements_limit = args.pe_limit
    flags.long_running_threshold = args.pe_long_running
    flags.dumpmaps = bool(args.pe_dumpmaps)
    if args.pe_wrap is not None:
        flags.warnings.append(
            "--[no-]wrap-large-counters: accepted; pgwarden writes every counter as its exact integer, and "
            "wraps none"
        )
    if errors:
        raise ConfigError(errors)
    return flags


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated list, as postgres_exporter splits it (blanks trimmed, empty items dropped)."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def parse_constant_labels(text: str, errors: list[str], warnings: list[str]) -> dict[str, str]:
    """`a=1,b=2` as postgres_exporter reads it: a pair without exactly one `=` is skipped with a warning, an
    empty name or value skipped; a name Prometheus would refuse is an error."""
    labels: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        pieces = part.strip().split("=")
        if len(pieces) != 2:
            warnings.append(f"--constantLabels: {part.strip()!r} skipped: the format is key=value")
            continue
        key, value = pieces[0].strip(), pieces[1].strip()
        if not key or not value:
            continue
        if not _LABEL_NAME.match(key) or key.startswith("__"):
            errors.append(f"--constantLabels: {key!r} is not a label name")
            continue
        labels[key] = value
    return labels


def apply_flags(config: ExporterConfig, flags: UpstreamFlags) -> ExporterConfig:
    """The configuration as amended by postgres_exporter's flags."""
    options = {c.name: config.collectors.options(c.name) for c in COLLECTORS}
    update: dict[str, dict[str, Any]] = {name: {} for name in options}

    def turn(parts: tuple[Part, ...], on: bool) -> None:
        for part in parts:
            if part.collector not in options:
                continue
            excluded = set(
                update[part.collector].get("exclude_families", options[part.collector].exclude_families)
            )
            names = set(part.names())
            excluded = excluded - names if on else excluded | names
            update[part.collector]["exclude_families"] = tuple(sorted(excluded))
            if on:
                update[part.collector]["enabled"] = True

    if flags.disable_default_metrics:
        turn(DEFAULT_METRICS, False)
    if flags.disable_settings_metrics:
        turn(UPSTREAM_BY_NAME["settings"].parts, False)
    for name, on in flags.collectors.items():
        turn(UPSTREAM_BY_NAME[name].parts, on)
    if flags.statements:
        update["statements"].update(flags.statements)
    if flags.long_running_threshold is not None:
        update["long_running_transactions"]["threshold"] = flags.long_running_threshold
    changed: dict[str, CollectorOptions] = {}
    for name, values in update.items():
        if not values:
            continue
        merged = options[name].model_copy(update=values)
        all_names = {f.name for f in next(c for c in COLLECTORS if c.name == name).families}
        if all_names <= set(merged.exclude_families):  # nothing of it left: do not run it at all
            merged = merged.model_copy(update={"enabled": False, "exclude_families": ()})
        try:  # checks the flags' values
            changed[name] = type(merged).model_validate(merged.model_dump())
        except ValidationError as exc:
            raise ConfigError(
                [f"collector {name}: {e['msg']} ({'.'.join(map(str, e['loc']))})" for e in exc.errors()]
            ) from None
    collectors: CollectorsBase = config.collectors.model_copy(update=changed)
    if flags.collection_timeout is not None:
        defaults = collectors.defaults.model_copy(update={"timeout": flags.collection_timeout})
        collectors = collectors.model_copy(update={"defaults": defaults})
    limits = config.limits
    if flags.statements_limit is not None:
        limits = limits.model_copy(update={"statements_top_n": flags.statements_limit})
    targets = tuple(_amend_target(t, flags) for t in config.targets)
    return config.model_copy(update={"collectors": collectors, "limits": limits, "targets": targets})


def _amend_target(target: Any, flags: UpstreamFlags) -> Any:
    update: dict[str, Any] = {}
    if flags.include_databases or flags.exclude_databases:
        rules = target.databases
        update["databases"] = DatabasesConfig(
            include=tuple(dict.fromkeys((*rules.include, *flags.include_databases))),
            exclude=tuple(dict.fromkeys((*rules.exclude, *flags.exclude_databases))),
        )
    if flags.max_concurrency is not None:
        update["max_connections"] = min(64, flags.max_concurrency)
    return target.model_copy(update=update) if update else target


def rename_namespaces(queries: QueryFile, prefix: str) -> QueryFile:
    """queries.yaml under --metric-prefix, as postgres_exporter renames it: the first `pg` of each namespace."""
    if prefix == "pg":
        return queries
    return QueryFile({name.replace("pg", prefix, 1): query for name, query in queries.root.items()})


def dump_maps() -> str:
    """--dumpmaps: each collector and the families it exports (postgres_exporter prints its metric maps)."""
    lines = []
    for collector in COLLECTORS:
        lines.append(collector.name)
        lines += [f"  {f.name:<58} {f.type:<8} {', '.join(f.labels)}" for f in collector.families]
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def _duration(text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def serve_options(flags: UpstreamFlags) -> ServeOptions:
    """How to serve, from the flags and the --config.file they name (its auth modules for /probe)."""
    upstream = load_upstream_config(flags.config_file, flags.config_file_given)
    probes = ProbeSettings(
        auth_modules=upstream.auth_modules,
        allowlist=upstream.probe_targets,
        databases=DatabasesConfig(include=flags.include_databases, exclude=flags.exclude_databases),
        max_connections=flags.max_concurrency,
    )
    return ServeOptions(flags.telemetry_path, render_labels(flags.constant_labels), probes)
