"""pg_stat_io (PostgreSQL 16+): I/O by backend type, object and context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Column, ColumnsCollector, counter, select_list, with_labels
from exporter.collectors.options import CollectorOptions

P = "pg_stat_io_"
LABELS = ("backend_type", "object", "context")
MIN_VERSION = 160000
# A NULL is an operation that never happens in that combination: no sample (absent, never 0).
APPLICABLE = "the operation does not apply to the combination, or PostgreSQL is before 16"
COLUMNS = tuple(
    Column(column, counter(f"{P}{column}_total", help_text, absent_when=APPLICABLE))
    for column, help_text in (
        ("reads", "Read operations."),
        ("writes", "Write operations."),
        ("extends", "Relation extend operations."),
        ("hits", "Times a wanted block was found in a shared buffer."),
        ("evictions", "Times a block was written out of a buffer to make it available for another use."),
        ("fsyncs", "fsync calls (those of the normal context only)."),
    )
)


class IoKeys(NamedTuple):
    backend_type: Sequence[str]
    object: Sequence[str]
    context: Sequence[str]


_SQL = (
    f"SELECT backend_type, object, context, {select_list(COLUMNS)} FROM pg_stat_io "
    "ORDER BY backend_type, object, context"
)


class StatIoCollector(ColumnsCollector[CollectorOptions]):
    name = "stat_io"
    source = "pg_stat_io (PostgreSQL 16+)"
    families = with_labels(LABELS, *(c.family for c in COLUMNS))
    keys = IoKeys

    def statement(self, version_num: int) -> tuple[tuple[Column, ...], str] | None:
        return (COLUMNS, _SQL) if version_num >= MIN_VERSION else None
