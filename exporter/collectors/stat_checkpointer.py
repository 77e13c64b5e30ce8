"""pg_stat_checkpointer (PostgreSQL 17+) as postgres_exporter's `stat_checkpointer` collector names it.

Off by default, as upstream: the checkpoint counters are also the bgwriter collector's pg_stat_bgwriter_*
families on every version. On a server before 17 the view does not exist: no sample, and no failure.
"""

from __future__ import annotations

from exporter.collectors.base import Column, ColumnsCollector, counter, select_list
from exporter.collectors.bgwriter import PG17
from exporter.collectors.options import OffByDefault

P = "pg_stat_checkpointer_"
ONLY_17 = "the server is older than PostgreSQL 17 (no pg_stat_checkpointer)"


def _c(column: str, name: str, help_text: str, cast: str = "int8") -> Column:
    return Column(column, counter(P + name, help_text, absent_when=ONLY_17), cast=cast)


# postgres_exporter's names and help texts (its collector/pg_stat_checkpointer.go)
COLUMNS = (
    _c("num_timed", "num_timed_total", "Number of scheduled checkpoints due to timeout"),
    _c("num_requested", "num_requested_total", "Number of requested checkpoints that have been performed"),
    _c("restartpoints_timed", "restartpoints_timed_total",
       "Number of scheduled restartpoints due to timeout or after a failed attempt to perform it"),
    _c("restartpoints_req", "restartpoints_req_total", "Number of requested restartpoints"),
    _c("restartpoints_done", "restartpoints_done_total", "Number of restartpoints that have been performed"),
    _c("write_time", "write_time_total",
       "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints "
       "where files are written to disk, in milliseconds", "float8"),
    _c("sync_time", "sync_time_total",
       "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints "
       "where files are synchronized to disk, in milliseconds", "float8"),
    _c("buffers_written", "buffers_written_total", "Number of buffers written during checkpoints and restartpoints"),
    _c("coalesce(extract(epoch FROM stats_reset), 0)", "stats_reset_total",
       "Time at which these statistics were last reset", "float8"),
)  # fmt: skip
_SQL = f"SELECT {select_list(COLUMNS)} FROM pg_stat_checkpointer"


class StatCheckpointerCollector(ColumnsCollector[OffByDefault]):
    name = "stat_checkpointer"
    order = 71
    source = "pg_stat_checkpointer (PostgreSQL 17+)"
    options_model = OffByDefault
    families = tuple(c.family for c in COLUMNS)

    def statement(self, version_num: int) -> tuple[tuple[Column, ...], str] | None:
        return (COLUMNS, _SQL) if version_num >= PG17 else None
