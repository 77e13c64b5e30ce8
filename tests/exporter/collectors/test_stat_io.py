"""pg_stat_io (PostgreSQL 16+): client backends' reads and hits against the view; nothing before 16."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, Scraper, flush_stats
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

P = "pg_stat_io_"
CLIENT = {"backend_type": "client backend", "object": "relation", "context": "normal"}
IO_SQL = (
    "SELECT hits, reads, fsyncs FROM pg_stat_io "
    "WHERE backend_type = 'client backend' AND object = 'relation' AND context = 'normal'"
)


async def test_stat_io_by_value(scraper_factory: Callable[..., Scraper], pg_server: PostgresServer) -> None:
    monitor = pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)
    if int(pg_server.execute("SHOW server_version_num")[0][0]) < 160000:
        samples = await scraper_factory(monitor).scrape()
        assert samples.get("pg_scrape_collector_success", collector="stat_io") == 1
        assert not [n for n in samples.names() if n.startswith(P)]
        return
    flush_stats(pg_server, DB_A, "SELECT count(*) FROM orders")
    before = pg_server.execute(IO_SQL)[0]
    samples = await scraper_factory(monitor).scrape()
    after = pg_server.execute(IO_SQL)[0]
    hits = samples.get(P + "hits_total", **CLIENT)
    assert hits is not None and 0 < before[0] <= hits <= after[0]
    reads = samples.get(P + "reads_total", **CLIENT)
    assert reads is not None and before[1] <= reads <= after[1]
    # a NULL is an operation that does not apply: client backends' fsyncs are counted, a temp relation's not
    assert before[2] is not None and samples.get(P + "fsyncs_total", **CLIENT) is not None
    temp = {"backend_type": "client backend", "object": "temp relation", "context": "normal"}
    assert samples.get(P + "fsyncs_total", **temp) is None
    assert samples.get(P + "hits_total", **temp) is not None
