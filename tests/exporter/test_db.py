"""Typed rows: a statement read into a NamedTuple by column name, and refused when the names differ."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from exporter.collectors.base import Column, fetch_table, gauge
from exporter.db import RowShapeError, ServerInfo, Session


class Pair(NamedTuple):
    name: str
    value: int


@pytest.fixture
async def session(pg_server: PostgresServer) -> AsyncIterator[Session]:
    conn = await psycopg.AsyncConnection.connect(pg_server.dsn(), autocommit=True)
    try:
        yield Session(conn, "postgres", ServerInfo(conn.info.server_version, "postgres"))
    finally:
        await conn.close()


async def test_typed_rows_by_name(session: Session) -> None:
    rows = await session.typed(Pair, "SELECT 'a' AS name, 1::int8 AS value UNION ALL SELECT 'b', 2")
    assert rows == [Pair("a", 1), Pair("b", 2)]
    assert rows[1].value == 2 and type(rows[0]) is Pair
    assert await session.typed(Pair, "SELECT 'a' AS name, 1 AS value WHERE false") == []


@pytest.mark.parametrize(
    "sql", ["SELECT 'a' AS name, 1 AS amount", "SELECT 1 AS value, 'a' AS name", "SELECT 'a' AS name"]
)
async def test_typed_rows_refuse_other_columns(session: Session, sql: str) -> None:
    with pytest.raises(RowShapeError, match="Pair has fields name, value; the statement returns"):
        await session.typed(Pair, sql)


class Keys(NamedTuple):
    name: Sequence[str]
    value: Sequence[int]


async def test_fetch_table_gives_typed_key_columns_and_value_columns(session: Session) -> None:
    columns = [Column("x", gauge("pg_x", "x")), Column("y", gauge("pg_y", "y"))]
    sql = "SELECT 'a' AS name, 1::int8 AS value, 10::int8, 20::int8 UNION ALL SELECT 'b', 2, 11, 21"
    table = await fetch_table(session, Keys, columns, sql)
    assert table.count == 2
    assert table.keys == Keys(("a", "b"), (1, 2)) and table.keys.value == (1, 2)
    assert table.values == [(10, 11), (20, 21)]
    empty = await fetch_table(session, Keys, columns, "SELECT 'a' AS name, 1 AS value, 1, 2 WHERE false")
    assert empty.count == 0 and empty.keys == Keys((), ()) and len(empty.values) == 2
    with pytest.raises(RowShapeError, match="Keys has fields name, value"):
        await fetch_table(session, Keys, columns, "SELECT 'a' AS label, 1 AS value, 1, 2")
