"""The collector interface: fetch rows from one database, render them as metric families."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from exporter.config import CollectorOptions, LimitsConfig
from exporter.db import Session
from exporter.exposition import Exposition, Family

ROWS_CUT = Family(
    "pg_exporter_rows_cut",
    "gauge",
    "Rows left out by a cardinality cap in the last refresh (limits: in the configuration).",
)


INTEGER_CASTS = ("int8", "int4")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a view exported as one metric family; `scale` converts units (ms to seconds)."""

    column: str
    family: Family
    min_version: int = 0
    max_version: int = 10**7
    scale: float | None = None
    cast: str = "int8"

    @property
    def select(self) -> str:
        return f"({self.column})::{self.cast}"


def counter(name: str, help_text: str) -> Family:
    return Family(name, "counter", help_text)


def gauge(name: str, help_text: str) -> Family:
    return Family(name, "gauge", help_text)


def with_labels(labels: Sequence[str], *families: Family) -> tuple[Family, ...]:
    """The families as documented: each with the labels its samples carry."""
    return tuple(replace(f, labels=tuple(labels)) for f in families)


def available(columns: Sequence[Column], version: int) -> list[Column]:
    """The columns this server version has."""
    return [c for c in columns if c.min_version <= version < c.max_version]


def select_list(columns: Sequence[Column]) -> str:
    return ", ".join(c.select for c in columns)


def cap_clause(limit: int) -> str:
    """A LIMIT for a capped query (0 = no cap); the limit is an int from validated config."""
    return f"LIMIT {int(limit)}" if limit > 0 else ""


class Collector(abc.ABC):
    """A source of metric families.

    Server-wide collectors fetch once from the DSN's database; per-database collectors fetch from every
    database of the server and render all their rows together (a family must stay in one block).
    """

    name: ClassVar[str]
    per_database: ClassVar[bool] = False
    default_ttl: ClassVar[float] = 0.0
    families: ClassVar[tuple[Family, ...]]  # with their labels, for the reference and its test
    source: ClassVar[str]  # the view or function read, for the reference

    def __init__(self, options: CollectorOptions, limits: LimitsConfig) -> None:
        self.options = options
        self.limits = limits

    @abc.abstractmethod
    async def fetch(self, session: Session) -> Any:
        """Query one database; return plain rows (no metrics here)."""

    @abc.abstractmethod
    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        """Turn (datname, fetch result) pairs into samples."""


def render_table(
    out: Exposition,
    labels: Sequence[str],
    rows: Sequence[Sequence[Any]],
    columns: Sequence[Column],
    first_value: int,
) -> None:
    """Render rows whose values start at index `first_value`, in `columns` order, one family per column."""
    if not rows:
        return
    by_column = list(zip(*rows, strict=True))  # one C-level transpose instead of r[i] per value
    for i, col in enumerate(columns):
        values: Any = by_column[first_value + i]
        if col.scale is not None:
            scale = col.scale
            values = [None if v is None else v * scale for v in values]
        out.add_column(col.family, labels, values, integers=col.scale is None and col.cast in INTEGER_CASTS)


def render_cut(out: Exposition, collector: str, datname: str, total: int, kept: int) -> None:
    out.add(ROWS_CUT, out.labels(("collector", "datname"), (collector, datname)), max(0, total - kept))
