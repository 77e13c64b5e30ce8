"""postgres_exporter's queries.yaml (`--extend.query-path`), read unchanged and checked at load.

The top-level key is the metric prefix; each query has `query`, `metrics` (a list of `{column: {usage,
description, metric_mapping}}`), `master`, `cache_seconds` and `runonserver`. Where postgres_exporter 0.11
silently drops something (an unknown usage, a misspelt key), this is an error naming its key path instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field, RootModel, StringConstraints, field_validator, model_validator

from pgwarden.config import ConfigError, StrictModel, load_yaml, validate_document

USAGES = ("LABEL", "COUNTER", "GAUGE", "MAPPEDMETRIC", "DURATION", "DISCARD")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class ColumnSpec(StrictModel):
    """One column: how it is used, and its HELP text. `metric_mapping` is read and, as in 0.11, not applied."""

    usage: str
    description: str = ""
    metric_mapping: dict[str, float] = {}

    @field_validator("usage")
    @classmethod
    def _known_usage(cls, usage: str) -> str:
        if usage not in USAGES:
            hint = " (HISTOGRAM is not supported)" if usage == "HISTOGRAM" else ""
            raise ValueError(
                f"unknown usage {usage!r}{hint}: use one of {', '.join(USAGES)} "
                "(postgres_exporter would silently drop the column)"
            )
        return usage


class UserQuery(StrictModel):
    """One entry of the file; its key is the metric prefix (the namespace)."""

    query: str = Field(min_length=1)
    metrics: tuple[dict[str, ColumnSpec], ...] = ()
    master: bool = False
    cache_seconds: int = Field(default=0, ge=0)
    runonserver: str = ""

    @field_validator("runonserver")
    @classmethod
    def _valid_range(cls, text: str) -> str:
        if text.strip():
            version_range(text)
        return text

    @model_validator(mode="after")
    def _columns_once(self) -> UserQuery:
        seen: set[str] = set()
        for i, entry in enumerate(self.metrics):
            for column in entry:
                if column in seen:
                    raise ValueError(f"metrics.{i}.{column}: column listed twice")
                if not LABEL_NAME.match(column):
                    raise ValueError(f"metrics.{i}.{column}: not a valid metric or label name part")
                seen.add(column)
        return self

    @property
    def columns(self) -> dict[str, ColumnSpec]:
        return {column: spec for entry in self.metrics for column, spec in entry.items()}

    def runs_on(self, version_num: int) -> bool:
        """Whether `runonserver` (empty: always) admits the server's version."""
        return not self.runonserver.strip() or version_range(self.runonserver)(semver_of(version_num))


Namespace = Annotated[str, StringConstraints(pattern=METRIC_NAME.pattern)]


class QueryFile(RootModel[dict[Namespace, UserQuery]]):
    """The whole file: namespace (a metric name prefix) → query."""


def load_query_file(path: Path) -> QueryFile:
    """The file, validated; a ConfigError whose lines start with the file's path and name the key path."""
    data = load_yaml(path)
    try:
        return validate_document(QueryFile, data)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {line}" for line in exc.errors]) from None


def file_hashsum(path: Path) -> str:
    """The file's SHA-256 in hex: pg_exporter_user_queries_load_error's `hashsum`, as postgres_exporter gives it."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


# runonserver: blang/semver ranges as postgres_exporter parses them: comparisons joined by spaces (and) and
# `||` (or), e.g. ">=10.0.0 <14.0.0 || >=16.0.0"; a version may end in a wildcard (`13.x`).
Version = tuple[int, int, int]
_COMPARISON = re.compile(r"^(>=|<=|!=|==|>|<|=|!)?(\d+)(?:\.(\d+|x|X|\*))?(?:\.(\d+|x|X|\*))?$")
_OPS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": lambda v, w: v >= w,
    "<=": lambda v, w: v <= w,
    ">": lambda v, w: v > w,
    "<": lambda v, w: v < w,
    "!=": lambda v, w: v != w,
    "!": lambda v, w: v != w,
    "=": lambda v, w: v == w,
    "==": lambda v, w: v == w,
    "": lambda v, w: v == w,
}


def semver_of(version_num: int) -> Version:
    """server_version_num as the semantic version postgres_exporter derives (150004 → 15.4.0)."""
    if version_num >= 100000:
        return version_num // 10000, version_num % 10000, 0
    return version_num // 10000, version_num // 100 % 100, version_num % 100


def version_range(text: str) -> Callable[[Version], bool]:
    """A predicate for a range; ValueError naming the part it cannot read."""
    alternatives = []
    for part in text.split("||"):
        checks = [_comparison(item) for item in part.split()]
        if not checks:
            raise ValueError(f"invalid version range {text!r}: empty alternative")
        alternatives.append(checks)

    def admits(version: Version) -> bool:
        return any(all(check(version) for check in checks) for checks in alternatives)

    return admits


def _comparison(item: str) -> Callable[[Version], bool]:
    match = _COMPARISON.match(item)
    if match is None:
        raise ValueError(f"invalid version comparison {item!r}: use e.g. >=10.0.0, <14.0.0 or 13.x")
    op, major, minor, patch = match.groups()
    wild = [p is not None and not p.isdigit() for p in (minor, patch)]
    if any(wild):
        if op not in (None, "=", "=="):
            raise ValueError(f"invalid version comparison {item!r}: a wildcard takes no operator")
        low = (int(major), int(minor) if minor and not wild[0] else 0, 0)
        high = (low[0] + 1, 0, 0) if wild[0] else (low[0], low[1] + 1, 0)
        return lambda v: low <= v < high
    bound = (int(major), int(minor or 0), int(patch or 0))
    compare = _OPS[op or ""]
    return lambda v: compare(v, bound)
