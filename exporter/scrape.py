"""Scraping one target: pg_up, every enabled collector (cached per its TTL), and the scrape's own metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from exporter.collectors.base import Collector
from exporter.config import ExporterConfig
from exporter.custom.collector import is_custom_query
from exporter.db import DatabaseUnavailable, ServerConnections, ServerInfo, Session
from exporter.exposition import Exposition, Fragment, escape
from exporter.framework import (
    COLLECTOR_AGE,
    COLLECTOR_DURATION,
    COLLECTOR_SUCCESS,
    CONNECTIONS,
    CONNECTIONS_MAX,
    CONNECTIONS_PEAK,
    DATABASE_SUCCESS,
    LAST_DURATION,
    LAST_ERROR,
    PG_UP,
    SCRAPES,
    USER_QUERIES_LOAD_ERROR,
)
from exporter.refreshing import Batch, CollectorState, RenderAsRead, Scheduled, data_age, safe_error
from exporter.sizes import RelationSizes
from exporter.target import ALWAYS_EXCLUDED_DATABASES, Target

log = logging.getLogger("pgwarden.scrape")


Fetched = dict[str, Any]  # collector name -> its fetch result, or the exception it failed with
Refresh = Callable[[Batch], Awaitable[None]]  # a refresh of the collectors due


class TargetScraper:
    """Scrapes one configured server; keeps its connections, its collectors' caches and relation sizes.

    Server-wide collectors fetch from the DSN's database. Per-database collectors are refreshed together,
    database by database: each database is visited on one connection of the target's budget, which runs every
    due collector there in turn, so that a server of 200 databases is read through `max_connections`.
    """

    def __init__(self, target: Target, config: ExporterConfig, collectors: Sequence[Scheduled]) -> None:
        """`collectors` are this target's own (`exporter.assemble.scheduled_collectors`)."""
        self.target = target
        self.config = config
        self.connections = ServerConnections(target)
        self.sizes = RelationSizes(config.collectors.defaults.size_ttl)
        self.collectors: list[Collector[Any, Any]] = [s.collector for s in collectors]
        self._states: dict[tuple[str, str], CollectorState] = {}
        self._scrapes = 0
        self._refreshing: set[asyncio.Task[None]] = set()
        self._timeouts = {s.collector.name: s.timeout for s in collectors}
        self._ttls = {s.collector.name: s.ttl for s in collectors}

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        await asyncio.gather(*self._refreshing, return_exceptions=True)
        await self.connections.close()

    async def scrape(self, const_labels: str = "", deadline: float | None = None) -> list[Fragment]:
        """All fragments of one scrape; `const_labels` (like `target="x"`) is added to every series. A refresh
        still running at `deadline` (monotonic) is left to finish for a later scrape (see `_collect`)."""
        started = time.monotonic()
        self._scrapes += 1
        out = Exposition(const_labels)
        plain = out.labels((), ())
        server: ServerInfo | None = None
        try:
            async with self.connections.connection(
                statement_timeout=self.config.collectors.defaults.timeout, check=True
            ) as conn:
                if not self.connections.main_dbname:  # the DSN names none: libpq's default (the user name)
                    self.connections.main_dbname = conn.info.dbname
                server = ServerInfo(
                    conn.info.server_version, self.connections.main_dbname or conn.info.dbname
                )
        except (DatabaseUnavailable, psycopg.Error) as exc:
            log.warning(
                "target down",
                extra={"target": self.target.name, "server": self.target.display, "error": safe_error(exc)},
            )
        out.add(PG_UP, plain, 1 if server else 0)
        groups: list[list[Fragment]] = []
        failed = server is None
        if server is not None:
            server_wide = [c for c in self.collectors if not c.per_database]
            per_database = [c for c in self.collectors if c.per_database]
            # Side by side, within the connection budget (a budget of one takes them in turn): on a server of
            # one large database the two halves take about as long, and the database has cores for both.
            server_done, databases_done = await asyncio.gather(
                self._collect(server_wide, server, const_labels, self._refresh_server_wide, deadline),
                self._collect(per_database, server, const_labels, self._refresh_databases, deadline),
            )
            done = server_done | databases_done
            for collector in self.collectors:
                state, age = done[collector.name]
                lbl = out.labels(COLLECTOR_DURATION.labels, (collector.name,))
                out.add(COLLECTOR_DURATION, lbl, state.duration)
                out.add(COLLECTOR_SUCCESS, lbl, 1 if state.success else 0)
                failed = failed or fails_the_scrape(collector, state)
                if state.served:
                    out.add(COLLECTOR_AGE, lbl, age)
                    groups.append(state.fragments)
                for datname, read in state.databases.items():
                    out.add(
                        DATABASE_SUCCESS, out.labels(DATABASE_SUCCESS.labels, (collector.name, datname)), read
                    )
        counts = self.connections.counts()
        out.add(CONNECTIONS, out.labels(CONNECTIONS.labels, ("open",)), counts.open)
        out.add(CONNECTIONS, out.labels(CONNECTIONS.labels, ("in_use",)), counts.in_use)
        out.add(CONNECTIONS_PEAK, plain, counts.peak)
        out.add(CONNECTIONS_MAX, plain, counts.budget)
        out.add(LAST_DURATION, plain, time.monotonic() - started)
        out.add(LAST_ERROR, plain, 1 if failed else 0)
        extended = self.config.extended_queries
        if extended is not None:  # a file that does not load stops the start: loaded, here
            labels = out.labels(USER_QUERIES_LOAD_ERROR.labels, (str(extended.path), extended.hashsum))
            out.add(USER_QUERIES_LOAD_ERROR, labels, 0)
        out.add(SCRAPES, plain, self._scrapes)
        return [f for group in [out.fragments(), *groups] for f in group]

    def _state(self, collector: Collector[Any, Any], const_labels: str) -> CollectorState:
        key = (collector.name, const_labels)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = CollectorState()
        return state

    def _due(self, collector: Collector[Any, Any], state: CollectorState) -> bool:
        return not state.fresh(time.monotonic(), self._ttls[collector.name])

    async def _collect(
        self,
        collectors: Sequence[Collector[Any, Any]],
        server: ServerInfo,
        const_labels: str,
        refresh: Refresh,
        deadline: float | None,
    ) -> dict[str, tuple[CollectorState, float]]:
        """Each collector's last refresh and its age: from its cache, else refreshed with the others due.

        The refresh runs in a task of its own: when it outlasts `deadline` (the scrape's, a monotonic time),
        the scrape is answered with the previous refresh's data, its age telling how old, and the refresh
        goes on for the next scrape. What is returned is a copy: the next refresh may replace it meanwhile.
        """
        started = time.monotonic()
        states = {c.name: self._state(c, const_labels) for c in collectors}
        due = [c for c in collectors if self._due(c, states[c.name])]
        if due:
            batch = Batch(due, states, server, const_labels)
            task = asyncio.get_running_loop().create_task(self._refresh(batch, refresh))
            self._refreshing.add(task)
            task.add_done_callback(self._refresh_done)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            finished, _ = await asyncio.wait({task}, timeout=timeout)
            if not finished:
                log.info(
                    "refresh outlasts the scrape timeout: serving the previous data, the refresh goes on",
                    extra={"target": self.target.name, "collector": ", ".join(c.name for c in due)},
                )
        now = time.monotonic()
        return {c.name: (replace(states[c.name]), data_age(states[c.name], started, now)) for c in collectors}

    async def _refresh(self, batch: Batch, refresh: Refresh) -> None:
        states = batch.states
        async with contextlib.AsyncExitStack() as stack:
            # always in the same (registry) order: two refreshes never wait on each other's lock
            for c in batch.collectors:
                await stack.enter_async_context(states[c.name].lock)
            # Another scrape's refresh may have done some while this one waited for it (single flight).
            due = [c for c in batch.collectors if self._due(c, states[c.name])]
            if due:
                await refresh(replace(batch, collectors=due, started=time.monotonic()))

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        self._refreshing.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("refresh failed", extra={"target": self.target.name, "error": safe_error(error)})

    async def _refresh_server_wide(self, batch: Batch) -> None:
        """The server-wide collectors due, one after the other on one connection to the DSN's database, each
        rendered while the next one's statement runs."""
        collectors, server = batch.collectors, batch.server
        visit: Fetched = {}

        def render(c: Collector[Any, Any]) -> None:
            result = visit[c.name]
            failed = isinstance(result, BaseException)
            errors = [self._describe(c, result)] if failed else []
            self._render(c, batch, [] if failed else [(server.datname, result)], errors)

        with RenderAsRead(collectors, render) as early:
            await self._visit(server.datname, collectors, server, visit, early.read)

    async def _refresh_databases(self, batch: Batch) -> None:
        """The per-database collectors due, visiting each database once, as many at once as the budget allows.
        A collector read from every database without a failure is rendered while the visits go on."""
        collectors, server = batch.collectors, batch.server
        self.sizes.new_refresh()
        listing_error: Exception | None = None
        try:
            databases = await self.databases(server)
            self.sizes.keep_only(databases)
        except (DatabaseUnavailable, psycopg.Error) as exc:
            databases, listing_error = [], exc
        chosen = {
            c.name: set(c.choose_databases(databases)) for c in collectors
        }  # custom queries pick theirs
        databases = [db for db in databases if any(db in chosen[c.name] for c in collectors)]
        visits: dict[str, Fetched] = {db: {} for db in databases}
        gone: set[str] = set()

        def render(c: Collector[Any, Any]) -> None:
            state = batch.states[c.name]
            results: list[tuple[str, Any]] = []
            errors = [] if listing_error is None else [f"listing databases: {safe_error(listing_error)}"]
            state.databases = {}
            state.unreachable = False
            for db, visit in visits.items():
                if c.name not in visit:  # a database this collector does not fetch from
                    continue
                result = visit[c.name]
                if not isinstance(result, BaseException):
                    results.append((db, result))
                elif db not in gone:  # dropped, or closed to connections, since the listing: not a failure
                    errors.append(f"{db}: {self._describe(c, result)}")
                    state.unreachable = state.unreachable or isinstance(result, DatabaseUnavailable)
                else:
                    continue
                state.databases[db] = not isinstance(result, BaseException)
            self._render(c, batch, results, errors)

        # A collector is rendered early once read from every database it fetches from (none after a listing
        # failure: its rows are incomplete).
        reads = (
            {}
            if listing_error
            else {c.name: sum(db in chosen[c.name] for db in databases) for c in collectors}
        )
        with RenderAsRead(collectors, render, reads) as early:
            await asyncio.gather(
                *(
                    self._visit(
                        db, [c for c in collectors if db in chosen[c.name]], server, visits[db], early.read
                    )
                    for db in databases
                )
            )
            gone |= await self._gone([db for db, v in visits.items() if _unreachable(v.values())])

    async def _visit(
        self,
        datname: str,
        collectors: Sequence[Collector[Any, Any]],
        server: ServerInfo,
        fetched: Fetched,
        on_read: Callable[[Collector[Any, Any], bool], None],
    ) -> None:
        """Every collector's fetch from one database into `fetched`, on one connection (another if one fetch
        broke it); `on_read` is told of each collector read, and whether it failed."""
        pending = list(collectors)
        refreshing = frozenset(c.name for c in collectors)
        shared: dict[str, Any] = {}
        probes = {c.name: c.probe for c in collectors if c.probe}
        while pending:
            try:
                async with self.connections.connection(datname) as conn:
                    session = Session(conn, datname, server, self.sizes, refreshing)
                    session.shared, session.probes = shared, probes
                    while pending:
                        collector = pending.pop(0)
                        fetched[collector.name] = await self._fetch(collector, session)
                        on_read(collector, isinstance(fetched[collector.name], BaseException))
                        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
                            break  # cancelled mid-statement: the others get a new connection
            except (DatabaseUnavailable, psycopg.Error) as exc:
                for c in pending:
                    fetched[c.name] = exc
                    on_read(c, True)
                pending = []

    async def _fetch(self, collector: Collector[Any, Any], session: Session) -> Any:
        """One collector's fetch within its timeout (statement_timeout and a deadline); its exception when it
        fails, so that one failure leaves the others alone."""
        timeout = self._timeouts[collector.name]
        try:
            await self.connections.set_statement_timeout(session.conn, timeout)
            async with asyncio.timeout(timeout):
                return await collector.fetch(session)
        except Exception as exc:
            return exc

    def _render(
        self,
        collector: Collector[Any, Any],
        batch: Batch,
        results: Sequence[tuple[str, Any]],
        errors: list[str],
    ) -> None:
        """The collector's fragments from its results, and the refresh's outcome and timing in its state."""
        state = batch.states[collector.name]
        served = bool(results) or not errors
        try:
            out = Exposition(batch.const_labels)
            if served:
                collector.render(out, results)
            excluded = collector.options.exclude_families
            state.fragments = [f for f in out.fragments() if f.name not in excluded]
        except Exception as exc:  # a failing collector never fails the scrape
            state.fragments, served = [], False
            errors = [*errors, safe_error(exc)]
        state.success, state.served = not errors, served
        if errors:
            shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
            log.warning(
                "collector failed",
                extra={"target": self.target.name, "collector": collector.name, "error": shown},
            )
        state.refreshed_at = time.monotonic()
        state.duration = state.refreshed_at - batch.started

    def _describe(self, collector: Collector[Any, Any], exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"timed out after {self._timeouts[collector.name]:g}s"
        return safe_error(exc)

    async def _gone(self, datnames: list[str]) -> set[str]:
        """Those of the databases that no longer exist or no longer take connections."""
        if not datnames:
            return set()
        try:
            async with self.connections.connection() as conn:
                cur = await conn.execute(
                    b"SELECT datname FROM pg_database WHERE datname = ANY(%s) AND datallowconn", [datnames]
                )
                still = {str(r[0]) for r in await cur.fetchall()}
        except (DatabaseUnavailable, psycopg.Error):
            return set()
        return set(datnames) - still

    async def databases(self, server: ServerInfo) -> list[str]:
        """Databases the per-database collectors visit: connectable ones, filtered by include/exclude."""
        async with self.connections.connection() as conn:
            cur = await conn.execute(
                b"SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                b"AND has_database_privilege(datname, 'CONNECT') ORDER BY datname"
            )
            names = [str(r[0]) for r in await cur.fetchall()]
        rules = self.target.config.databases
        include = set(rules.include)
        exclude = set(rules.exclude) | (set(ALWAYS_EXCLUDED_DATABASES) - include)
        return [n for n in names if (not include or n in include) and n not in exclude]


def fails_the_scrape(collector: Collector[Any, Any], state: CollectorState) -> bool:
    """Whether the collector's last refresh sets pg_exporter_last_scrape_error, as in postgres_exporter: a
    custom query that failed (its queries.yaml namespaces are what that metric reports on), or a database that
    took no connection (its auto-discovered DSNs). A built-in collector failing reports only
    pg_scrape_collector_success 0, as postgres_exporter's collectors do."""
    return (is_custom_query(collector) and not state.success) or state.unreachable


def _unreachable(results: Iterable[Any]) -> bool:
    return any(isinstance(r, DatabaseUnavailable) for r in results)


def target_label(name: str) -> str:
    return f'target="{escape(name)}"'
