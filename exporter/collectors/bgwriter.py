"""pg_stat_bgwriter (and pg_stat_checkpointer on PostgreSQL 17+) as postgres_exporter names them."""

from __future__ import annotations

from exporter.collectors.base import Column, ColumnsCollector, available, counter, select_list
from exporter.collectors.options import CollectorOptions

P = "pg_stat_bgwriter_"
PG17 = 170000


def _c(
    column: str, name: str, help_text: str, min_v: int = 0, max_v: int = 10**7, cast: str = "int8"
) -> Column:
    return Column(column, counter(P + name + "_total", help_text), min_v, max_v, cast=cast)


BGWRITER = (
    _c("b.buffers_clean", "buffers_clean", "Buffers written by the background writer."),
    _c("b.maxwritten_clean", "maxwritten_clean",
       "Times the background writer stopped a cleaning scan for writing too many buffers."),
    _c("b.buffers_alloc", "buffers_alloc", "Buffers allocated."),
    _c("b.buffers_backend", "buffers_backend", "Buffers written directly by a backend.", max_v=PG17),
    _c("b.buffers_backend_fsync", "buffers_backend_fsync",
       "Times a backend had to execute its own fsync call.", max_v=PG17),
    _c("extract(epoch FROM b.stats_reset)", "stats_reset",
       "Time at which the bgwriter statistics were last reset (Unix time).", cast="float8"),
)  # fmt: skip
# Before 17 these live in pg_stat_bgwriter; from 17 on in pg_stat_checkpointer, under new column names.
CHECKPOINTS = (
    ("checkpoints_timed", "num_timed", "checkpoints_timed", "Scheduled checkpoints performed.", "int8"),
    ("checkpoints_req", "num_requested", "checkpoints_req", "Requested checkpoints performed.", "int8"),
    ("checkpoint_write_time", "write_time", "checkpoint_write_time",
     "Time spent writing checkpoint files to disk, in milliseconds.", "float8"),
    ("checkpoint_sync_time", "sync_time", "checkpoint_sync_time",
     "Time spent synchronizing checkpoint files to disk, in milliseconds.", "float8"),
    ("buffers_checkpoint", "buffers_written", "buffers_checkpoint", "Buffers written during checkpoints.", "int8"),
)  # fmt: skip
CHECKPOINT_COLUMNS = tuple(
    _c(f"b.{old}", name, h, max_v=PG17, cast=cast) for old, _, name, h, cast in CHECKPOINTS
)
CHECKPOINTER_COLUMNS = tuple(
    _c(f"c.{new}", name, h, min_v=PG17, cast=cast) for _, new, name, h, cast in CHECKPOINTS
)


def bgwriter_sql(version_num: int) -> tuple[list[Column], str]:
    """The columns and query for this server version (checkpoint columns moved to pg_stat_checkpointer in 17)."""
    bgwriter = available(BGWRITER, version_num)
    if version_num >= PG17:
        columns = available(CHECKPOINTER_COLUMNS, version_num) + bgwriter
        source = "pg_stat_checkpointer c, pg_stat_bgwriter b"
    else:
        columns = available(CHECKPOINT_COLUMNS, version_num) + bgwriter
        source = "pg_stat_bgwriter b"
    return columns, f"SELECT {select_list(columns)} FROM {source}"


class BgwriterCollector(ColumnsCollector[CollectorOptions]):
    name = "bgwriter"
    order = 70
    source = "pg_stat_bgwriter (pg_stat_checkpointer on 17+)"
    families = tuple(c.family for c in CHECKPOINT_COLUMNS + BGWRITER)

    def statement(self, version_num: int) -> tuple[list[Column], str]:
        return bgwriter_sql(version_num)
