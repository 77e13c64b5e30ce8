"""Probes: the visit's first statement (the tables collector's) tells which of the other collectors have
nothing to read in the database, and those run no statement of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from exporter.collectors.base import Collector
from exporter.collectors.invalid_indexes import InvalidIndexesCollector
from exporter.collectors.options import CollectorOptions, LimitsConfig
from exporter.collectors.progress_vacuum import ProgressVacuumCollector
from exporter.collectors.sequences import SequencesCollector
from exporter.collectors.statio_tables import StatioTablesCollector
from exporter.collectors.tables import TablesCollector
from exporter.db import ServerInfo, Session
from tests.support.exporter import DB_A, DB_B, Scraper

PROBED = (InvalidIndexesCollector, SequencesCollector, ProgressVacuumCollector)


def collectors(*classes: type[Collector[Any, Any]]) -> list[Collector[Any, Any]]:
    return [cls(CollectorOptions(), LimitsConfig()) for cls in classes]


@asynccontextmanager
async def visit(
    pg_server: PostgresServer, db: str, visiting: list[Collector[Any, Any]]
) -> AsyncIterator[Session]:
    """A session on `db` as a visit refreshing `visiting` opens it."""
    conn = await psycopg.AsyncConnection.connect(pg_server.dsn(db), autocommit=True)
    try:
        session = Session(
            conn,
            db,
            ServerInfo(conn.info.server_version, "postgres"),
            refreshing=frozenset(c.name for c in visiting),
        )
        session.probes = {c.name: c.probe for c in visiting if c.probe}
        yield session
    finally:
        await conn.close()


@pytest.mark.parametrize("statio", [False, True])
async def test_nothing_to_read_runs_no_statement(
    pg_server: PostgresServer, databases: tuple[str, str], statio: bool
) -> None:
    tables, *probed = collectors(TablesCollector, *PROBED)
    partner = collectors(StatioTablesCollector) if statio else []
    async with visit(pg_server, DB_B, [tables, *partner, *probed]) as session:
        read = await tables.fetch(session)
        assert read.table.count == 1  # invoices
        assert {name: session.shared[name] for name in session.probes} == {c.name: [] for c in probed}
        await session.conn.close()  # a statement now would fail: none is run
        for collector in probed:
            assert await collector.fetch(session) == []
            assert collector.name not in session.shared


async def test_something_to_read_is_read(pg_server: PostgresServer, databases: tuple[str, str]) -> None:
    pg_server.execute("CREATE SEQUENCE exp_probed; SELECT nextval('exp_probed')", dbname=DB_A)
    try:
        tables, invalid, sequences, vacuum = collectors(TablesCollector, *PROBED)
        async with visit(pg_server, DB_A, [tables, invalid, sequences, vacuum]) as session:
            await tables.fetch(session)
            assert session.shared == {invalid.name: [], vacuum.name: []}
            rows = await sequences.fetch(session)
    finally:
        pg_server.execute("DROP SEQUENCE exp_probed", dbname=DB_A)
    assert [r.sequencename for r in rows] == ["exp_probed"]


async def test_no_table_no_probe(pg_server: PostgresServer, databases: tuple[str, str]) -> None:
    """A database without user tables gives the tables statement no row to carry the probes: each collector
    then reads for itself."""
    tables, *probed = collectors(TablesCollector, *PROBED)
    async with visit(pg_server, "postgres", [tables, *probed]) as session:
        read = await tables.fetch(session)
        assert read.table.count == 0 and session.shared == {}


async def test_a_scrape_still_reads_what_a_probe_finds(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """Through the scraper: a sequence in one database is read, the other database's probe skips it."""
    pg_server.execute("CREATE SEQUENCE exp_probed; SELECT setval('exp_probed', 5)", dbname=DB_B)
    try:
        samples = await scraper_factory().scrape()
    finally:
        pg_server.execute("DROP SEQUENCE exp_probed", dbname=DB_B)
    assert samples.get("pg_scrape_collector_success", collector="sequences") == 1
    assert [lbl["sequencename"] for lbl, _ in samples.all("pg_sequence_used_ratio", datname=DB_B)] == [
        "exp_probed"
    ]
