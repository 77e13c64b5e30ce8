"""Scraping one target: pg_up, every enabled collector (cached per its TTL), and the scrape's own metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from exporter.collectors import build_collectors, collector_timeout, collector_ttl
from exporter.collectors.base import ROWS_CUT, Collector
from exporter.config import ALWAYS_EXCLUDED_DATABASES, ExporterConfig, Target
from exporter.db import DatabaseUnavailable, ServerConnections, ServerInfo, Session
from exporter.exposition import Exposition, Fragment, escape
from exporter.exposition import Family as F
from exporter.sizes import RelationSizes

log = logging.getLogger("pgwarden.scrape")

PG_UP = F("pg_up", "gauge", "Whether the last scrape could connect to the server (1 yes, 0 no).")
LAST_DURATION = F(
    "pg_exporter_last_scrape_duration_seconds", "gauge", "Duration of the last scrape of this target."
)
LAST_ERROR = F(
    "pg_exporter_last_scrape_error",
    "gauge",
    "Whether the last scrape failed: server down or a collector failed.",
)
SCRAPES = F("pg_exporter_scrapes_total", "counter", "Scrapes of this target since the exporter started.")
COLLECTOR_DURATION = F(
    "pg_scrape_collector_duration_seconds",
    "gauge",
    "Duration of the collector's last refresh.",
    ("collector",),
)
COLLECTOR_SUCCESS = F(
    "pg_scrape_collector_success",
    "gauge",
    "Whether the collector's last refresh succeeded (1) or failed (0).",
    ("collector",),
)
COLLECTOR_AGE = F(
    "pg_exporter_collector_data_age_seconds",
    "gauge",
    "Age of the data a collector served: 0 when refreshed by this scrape, more when served from its TTL cache.",
    ("collector",),
)
FRAMEWORK_FAMILIES = (
    PG_UP,
    LAST_DURATION,
    LAST_ERROR,
    SCRAPES,
    COLLECTOR_DURATION,
    COLLECTOR_SUCCESS,
    COLLECTOR_AGE,
    ROWS_CUT,
)


@dataclass
class CollectorState:
    """The last refresh of one collector for one label variant."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fragments: list[Fragment] = field(default_factory=list)
    refreshed_at: float = -1.0
    duration: float = 0.0
    success: bool = False

    def fresh(self, now: float, ttl: float) -> bool:
        return self.success and ttl > 0 and now - self.refreshed_at < ttl


class TargetScraper:
    """Scrapes one configured server; keeps its connections and its collectors' caches."""

    def __init__(self, target: Target, config: ExporterConfig) -> None:
        self.target = target
        self.config = config
        self.connections = ServerConnections(target)
        self.collectors: list[Collector[Any, Any]] = build_collectors(config)
        self._states: dict[tuple[str, str], CollectorState] = {}
        self._scrapes = 0
        self._warned: set[str] = set()
        self._timeouts = {c.name: collector_timeout(config, c) for c in self.collectors}
        self._ttls = {c.name: collector_ttl(config, c) for c in self.collectors}

    async def close(self) -> None:
        await self.connections.close()

    async def scrape(self, const_labels: str = "") -> list[Fragment]:
        """All fragments of one scrape; `const_labels` (like `target="x"`) is added to every series."""
        started = time.monotonic()
        self._scrapes += 1
        out = Exposition(const_labels)
        plain = out.labels((), ())
        server: ServerInfo | None = None
        try:
            async with self.connections.connection(
                statement_timeout=self.config.collectors.defaults.timeout, check=True
            ) as conn:
                server = ServerInfo(
                    conn.info.server_version, self.connections.main_dbname or conn.info.dbname
                )
        except (DatabaseUnavailable, psycopg.Error) as exc:
            log.warning(
                "target down",
                extra={"target": self.target.name, "server": self.target.display, "error": _safe_error(exc)},
            )
        out.add(PG_UP, plain, 1 if server else 0)
        groups: list[list[Fragment]] = []
        failed = server is None
        if server is not None:
            sizes = RelationSizes()
            results = await asyncio.gather(
                *(self._collect(c, server, const_labels, sizes) for c in self.collectors)
            )
            for collector, (state, age) in zip(self.collectors, results, strict=True):
                lbl = out.labels(COLLECTOR_DURATION.labels, (collector.name,))
                out.add(COLLECTOR_DURATION, lbl, state.duration)
                out.add(COLLECTOR_SUCCESS, lbl, 1 if state.success else 0)
                if state.success:
                    out.add(COLLECTOR_AGE, lbl, age)
                    groups.append(state.fragments)
                else:
                    failed = True
        out.add(LAST_DURATION, plain, time.monotonic() - started)
        out.add(LAST_ERROR, plain, 1 if failed else 0)
        out.add(SCRAPES, plain, self._scrapes)
        return [f for group in [out.fragments(), *groups] for f in group]

    async def _collect(
        self, collector: Collector[Any, Any], server: ServerInfo, const_labels: str, sizes: RelationSizes
    ) -> tuple[CollectorState, float]:
        key = (collector.name, const_labels)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = CollectorState()
        ttl = self._ttls[collector.name]
        if state.fresh(time.monotonic(), ttl):
            return state, time.monotonic() - state.refreshed_at
        async with state.lock:
            # Another scrape may have refreshed it while this one waited: serve that (single flight).
            if state.fresh(time.monotonic(), ttl):
                return state, time.monotonic() - state.refreshed_at
            started = time.monotonic()
            timeout = self._timeouts[collector.name]
            state.fragments = []  # expired: let it go before the refresh builds its replacement
            try:
                async with asyncio.timeout(timeout):
                    results = await self._fetch_all(collector, server, timeout, sizes)
                out = Exposition(const_labels)
                collector.render(out, results)
                state.fragments = out.fragments()
                state.success = True
            except Exception as exc:  # a failing collector never fails the scrape
                state.fragments = []
                state.success = False
                log.warning(
                    "collector failed",
                    extra={
                        "target": self.target.name,
                        "collector": collector.name,
                        "error": _safe_error(exc)
                        if not isinstance(exc, TimeoutError)
                        else f"timed out after {timeout:g}s",
                    },
                )
            state.refreshed_at = time.monotonic()
            state.duration = state.refreshed_at - started
            return state, 0.0

    async def _fetch_all(
        self,
        collector: Collector[Any, Any],
        server: ServerInfo,
        statement_timeout: float,
        sizes: RelationSizes,
    ) -> Sequence[tuple[str, Any]]:
        if not collector.per_database:
            return [
                (
                    server.datname,
                    await self._fetch_one(collector, None, server.datname, server, statement_timeout, sizes),
                )
            ]
        databases = list(collector.choose_databases(await self.databases(server)))
        fetched = await asyncio.gather(
            *(self._fetch_one(collector, db, db, server, statement_timeout, sizes) for db in databases),
            return_exceptions=True,
        )
        results: list[tuple[str, Any]] = []
        errors: list[str] = []
        for db, res in zip(databases, fetched, strict=True):
            if isinstance(res, BaseException):
                errors.append(f"{db}: {_safe_error(res)}")
            else:
                results.append((db, res))
        if errors:
            raise CollectorPartialFailure("; ".join(errors))
        return results

    async def _fetch_one(
        self,
        collector: Collector[Any, Any],
        dbname: str | None,
        datname: str,
        server: ServerInfo,
        statement_timeout: float,
        sizes: RelationSizes,
    ) -> Any:
        async with self.connections.connection(dbname, statement_timeout=statement_timeout) as conn:
            return await collector.fetch(Session(conn, datname, server, sizes))

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


class CollectorPartialFailure(Exception):
    """Some databases of a per-database collector failed; the others' rows are not served either."""


def _safe_error(exc: BaseException) -> str:
    """An error message fit for logs: psycopg's connection errors can quote the DSN, never its password,
    but keep only the first line to stay terse."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def target_label(name: str) -> str:
    return f'target="{escape(name)}"'
