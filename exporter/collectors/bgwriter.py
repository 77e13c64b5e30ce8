"""pg_stat_bgwriter (and pg_stat_checkpointer on PostgreSQL 17+) as postgres_exporter names them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, Column, available, counter, render_table, select_list
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_stat_bgwriter_"
PG17 = 170000


def _c(
    column: str, name: str, help_text: str, min_v: int = 0, max_v: int = 10**7, cast: str = "int8"
) -> Column:
    return Column(column, counter(P + name + "_total", help_text), min_v, max_v, cast=cast)


BGWRITER = (
    _c("buffers_clean", "buffers_clean", "Buffers written by the background writer."),
    _c("maxwritten_clean", "maxwritten_clean",
       "Times the background writer stopped a cleaning scan for writing too many buffers."),
    _c("buffers_alloc", "buffers_alloc", "Buffers allocated."),
    _c("buffers_backend", "buffers_backend", "Buffers written directly by a backend.", max_v=PG17),
    _c("buffers_backend_fsync", "buffers_backend_fsync",
       "Times a backend had to execute its own fsync call.", max_v=PG17),
    _c("extract(epoch FROM stats_reset)", "stats_reset",
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
CHECKPOINT_COLUMNS = tuple(_c(old, name, h, max_v=PG17, cast=cast) for old, _, name, h, cast in CHECKPOINTS)
CHECKPOINTER_COLUMNS = tuple(_c(new, name, h, min_v=PG17, cast=cast) for _, new, name, h, cast in CHECKPOINTS)


class BgwriterCollector(Collector):
    name = "bgwriter"
    source = "pg_stat_bgwriter (pg_stat_checkpointer on 17+)"
    families = tuple(c.family for c in CHECKPOINT_COLUMNS + BGWRITER)

    async def fetch(self, session: Session) -> Any:
        version = session.server.version_num
        bgwriter = available(BGWRITER, version)
        if version >= PG17:
            checkpoints = available(CHECKPOINTER_COLUMNS, version)
            sql = (
                f"SELECT {select_list(checkpoints)}, {select_list(bgwriter)} "
                "FROM pg_stat_checkpointer, pg_stat_bgwriter"
            )
        else:
            checkpoints = available(CHECKPOINT_COLUMNS, version)
            sql = f"SELECT {select_list(checkpoints)}, {select_list(bgwriter)} FROM pg_stat_bgwriter"
        return checkpoints + bgwriter, await session.rows(sql)

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, (columns, rows) in results:
            render_table(out, [out.labels((), ())] * len(rows), rows, columns, 0)
