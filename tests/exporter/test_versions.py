"""Version branches for servers we cannot start here (PostgreSQL 12, 13, 14, 17): the SQL each one gets.

PostgreSQL 15 runs for real in the other tests; these check that the other majors are sent the columns their
views have, by name, as the PostgreSQL release notes describe the renames.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from exporter.collectors.base import Column, available
from exporter.collectors.bgwriter import bgwriter_sql
from exporter.collectors.database import COLUMNS as DATABASE_COLUMNS
from exporter.collectors.postmaster import short_version
from exporter.collectors.statements import statements_sql
from exporter.collectors.tables import COLUMNS as TABLE_COLUMNS


def test_bgwriter_reads_pg_stat_checkpointer_from_17() -> None:
    columns, sql = bgwriter_sql(170002)
    assert "pg_stat_checkpointer c" in sql
    assert "c.num_timed" in sql and "c.num_requested" in sql and "c.buffers_written" in sql
    assert "buffers_backend" not in sql  # gone in 17 (moved to pg_stat_io)
    assert "b.stats_reset" in sql  # both views have stats_reset: qualified
    names = [c.family.name for c in columns]
    assert "pg_stat_bgwriter_checkpoints_timed_total" in names  # same names as before 17


def test_bgwriter_before_17() -> None:
    columns, sql = bgwriter_sql(160004)
    assert "pg_stat_checkpointer" not in sql
    assert "b.checkpoints_timed" in sql and "b.buffers_backend_fsync" in sql
    assert len(columns) == len({c.family.name for c in columns})


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (120000, ["total_time", "max_time", "blk_read_time"], ["total_exec_time", "shared_blk_read_time"]),
        (130000, ["total_exec_time", "max_exec_time", "blk_read_time"], ["shared_blk_read_time"]),
        (170000, ["total_exec_time", "shared_blk_read_time", "shared_blk_write_time"], [" s.blk_read_time"]),
    ],
)
def test_statements_columns_by_version(version: int, present: list[str], absent: list[str]) -> None:
    sql = statements_sql(version, 100, include_query=False, query_length=200)
    for column in present:
        assert column in sql
    for column in absent:
        assert column not in sql
    assert "LIMIT 100" in sql and "left(" not in sql


def test_statements_no_cap_and_query_text() -> None:
    sql = statements_sql(150000, 0, include_query=True, query_length=80)
    assert "LIMIT" not in sql and "left(min(s.query), 80)" in sql


def test_version_dependent_columns() -> None:
    def names(columns: Sequence[Column], version: int) -> set[str]:
        return {c.family.name for c in available(columns, version)}

    assert "pg_stat_database_sessions" not in names(DATABASE_COLUMNS, 130000)
    assert "pg_stat_database_sessions" in names(DATABASE_COLUMNS, 140000)
    assert "pg_stat_database_checksum_failures" not in names(DATABASE_COLUMNS, 110000)
    assert "pg_stat_user_tables_n_ins_since_vacuum" not in names(TABLE_COLUMNS, 120000)
    assert "pg_stat_user_tables_n_ins_since_vacuum" in names(TABLE_COLUMNS, 130000)


@pytest.mark.parametrize(("num", "text"), [(150004, "15.4.0"), (170000, "17.0.0"), (90624, "9.6.24")])
def test_short_version(num: int, text: str) -> None:
    assert short_version(num) == text
