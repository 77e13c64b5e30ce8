"""The server's WAL position as postgres_exporter's `xlog_location` collector names it: pg_xlog_location_bytes.

postgres_exporter exports it only before PostgreSQL 10 (its query uses the xlog functions of those versions);
here it is the same number on every version: the current WAL position on a primary, the last replayed one on
a standby, truncated to its low 52 bits as upstream does (a float64 holds it exactly). Off by default, as there.
"""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import OffByDefault

BYTES = gauge(
    "pg_xlog_location_bytes",
    "Postgres LSN (log sequence number) being generated on primary or replayed on replica (truncated to low 52 "
    "bits)",
    absent_when="a standby that has replayed nothing yet",
)


class Location(NamedTuple):
    bytes: int | None


_SQL = """
SELECT ((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0')
        % (2::numeric ^ 52))::int8 AS bytes
"""


class XlogLocationCollector(RowsCollector[Location, OffByDefault]):
    name = "xlog_location"
    source = "pg_current_wal_lsn(), pg_last_wal_replay_lsn()"
    options_model = OffByDefault
    families = (BYTES,)
    row = Location
    sql = _SQL
