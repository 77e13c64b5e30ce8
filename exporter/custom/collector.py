"""Custom queries as collectors: one `custom:<name>` collector per query of queries.yaml or `custom_queries:`.

Both kinds run their statement the same way: as postgres_exporter runs it, committed and not read-only (query
sets call monitoring functions that keep state, a settings checksum baseline written on first call), in a
transaction of its own with its own statement_timeout, one statement only (the extended protocol refuses
`COMMIT; DELETE ...`), every column read as lib/pq reads it (see `values`). The exporter's own collectors are
plain SELECTs of statistics views and functions. A query that fails, returns duplicate series or lacks a declared column fails its collector
(`pg_scrape_collector_success{collector="custom:<name>"} 0`), never the scrape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar, cast

import psycopg

from exporter.collectors.base import Collector
from exporter.collectors.options import CollectorOptions
from exporter.custom.config import CustomQuery
from exporter.custom.queries_file import UserQuery
from exporter.custom.values import load_as_text, to_float, to_label
from exporter.db import Session
from exporter.exposition import Exposition, Family, MetricType


class QueryResult(NamedTuple):
    """A statement's column names and rows, and the `server` label postgres_exporter would give them."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    server: str


class CustomQueryError(Exception):
    """A custom query's result cannot be rendered (a missing column, a duplicate series, not a number)."""


async def query_rows(
    session: Session, sql: str, statement_timeout: float
) -> tuple[tuple[str, ...], list[Any]]:
    """Run `sql` alone in a transaction of its own with its `statement_timeout` (seconds), and commit it: what
    it writes stays, as under postgres_exporter (on a standby a write fails as it does there)."""
    conn = session.conn
    ms = max(1, int(statement_timeout * 1000))
    await conn.execute(f"BEGIN; SET LOCAL statement_timeout = {ms}".encode())
    try:
        async with conn.cursor(binary=False) as cur:
            load_as_text(cur.adapters)
            # stream() always uses the extended protocol: a string of several statements is an error.
            rows = [row async for row in cur.stream(sql.encode())]
            columns = tuple(c.name for c in cur.description or ())
    except psycopg.Error:
        with contextlib.suppress(psycopg.Error):
            await conn.execute(b"ROLLBACK")
        raise
    await conn.execute(b"COMMIT")
    return columns, rows


def fingerprint(session: Session) -> str:
    """postgres_exporter's `server` label: the DSN's host and port (localhost and 5432 when not given)."""
    params = session.conn.info.get_parameters()
    return f"{params.get('host') or 'localhost'}:{params.get('port') or '5432'}"


class _QueryCollector(Collector[QueryResult, CollectorOptions]):
    """What both kinds share: the statement, its timeout, and the databases it runs in."""

    sql: ClassVar[str]
    timeout: ClassVar[float]
    database_names: ClassVar[tuple[str, ...]] = ()  # explicit databases; empty: the per_database rule

    def choose_databases(self, visited: Sequence[str]) -> Sequence[str]:
        return self.database_names or visited

    async def fetch(self, session: Session) -> QueryResult:
        columns, rows = await query_rows(session, self.sql, self.timeout)
        return QueryResult(columns, rows, fingerprint(session))


def is_custom_query(collector: Collector[Any, Any]) -> bool:
    """Whether the collector runs a query of queries.yaml or `custom_queries:`."""
    return isinstance(collector, _QueryCollector)


class _Series:
    """Samples of one render, refusing a series twice (Prometheus would reject the whole scrape)."""

    def __init__(self, out: Exposition) -> None:
        self.out = out
        self.seen: set[tuple[str, tuple[str, ...]]] = set()

    def add(self, family: Family, values: tuple[str, ...], value: float) -> None:
        key = (family.name, values)
        if key in self.seen:
            labels = ", ".join(f"{n}={v!r}" for n, v in zip(family.labels, values, strict=True))
            raise CustomQueryError(f"{family.name}: more than one row with {labels or 'no labels'}")
        self.seen.add(key)
        # 2 rather than 2.0, as postgres_exporter writes it (the same float to Prometheus either way)
        number = int(value) if value.is_integer() and abs(value) < 2**53 else value
        self.out.add(family, self.out.labels(family.labels, values), number)


_KIND: dict[str, MetricType] = {
    "COUNTER": "counter",
    "GAUGE": "gauge",
    "MAPPEDMETRIC": "gauge",
    "DURATION": "gauge",
}


class ExtendedQueryCollector(_QueryCollector):
    """One query of postgres_exporter's queries.yaml, rendered as postgres_exporter 0.11 renders it.

    A metric is `<namespace>_<column>` (DURATION: `<namespace>_<column>_milliseconds`), labelled by the LABEL
    columns and `server`, names sorted; a column the file does not list is an untyped metric; NULL is NaN; a
    value that is not a number skips that sample, as in postgres_exporter.
    """

    namespace: ClassVar[str]
    query: ClassVar[UserQuery]
    label_names: ClassVar[tuple[str, ...]]
    label_columns: ClassVar[tuple[str, ...]]
    discarded: ClassVar[frozenset[str]]
    by_column: ClassVar[dict[str, Family]]

    async def fetch(self, session: Session) -> QueryResult:
        if not self.query.runs_on(session.server.version_num):  # runonserver excludes this server
            return QueryResult((), [], "")
        return await super().fetch(session)

    def render(self, out: Exposition, results: Sequence[tuple[str, QueryResult]]) -> None:
        series = _Series(out)
        for _, result in results:
            index = {name: i for i, name in enumerate(result.columns)}  # a repeated name: the last one
            # A LABEL column missing from the result reads column 0, as postgres_exporter's map lookup does.
            sources = {c: index.get(c, 0) for c in self.label_columns}
            unknown = {
                c: untyped_family(self.namespace, c, self.label_names)
                for c in result.columns
                if c not in self.by_column and c not in self.discarded
            }
            for row in result.rows:
                by_name = {c: to_label(row[i]) for c, i in sources.items()} | {"server": result.server}
                labels = tuple(by_name[n] for n in self.label_names)
                for i, column in enumerate(result.columns):
                    family = self.by_column.get(column) or unknown.get(column)
                    if family is None:
                        continue
                    value = to_float(row[i])
                    if value is not None:
                        series.add(family, labels, value)


class CustomQueryCollector(_QueryCollector):
    """One query of `custom_queries:`: the declared metrics, each labelled by its declared columns (and
    `datname` when the query runs in more than the DSN's database). NULL leaves the sample out."""

    config: ClassVar[CustomQuery]

    def render(self, out: Exposition, results: Sequence[tuple[str, QueryResult]]) -> None:
        series = _Series(out)
        by_datname = self.config.databases is not None
        for datname, result in results:
            index = {name: i for i, name in enumerate(result.columns)}
            for metric, family in zip(self.config.metrics, self.families, strict=True):
                missing = [c for c in (metric.column, *metric.labels) if c not in index]
                if missing:
                    raise CustomQueryError(f"{metric.name}: the result has no column {', '.join(missing)}")
                at, label_at = index[metric.column], [index[label] for label in metric.labels]
                for row in result.rows:
                    if row[at] is None:
                        continue
                    value = to_float(row[at])
                    if value is None:
                        raise CustomQueryError(f"{metric.name}: column {metric.column} is not a number")
                    labels = tuple(to_label(row[i]) for i in label_at)
                    series.add(family, (*labels, datname) if by_datname else labels, value)


C = TypeVar("C", bound=_QueryCollector)


def _collector(base: type[C], name: str, attrs: dict[str, Any]) -> type[C]:
    """A subclass for one query: the registry's scheme declares a collector by its class attributes."""
    return cast(type[C], type(f"{base.__name__}[{name}]", (base,), {"name": f"custom:{name}", **attrs}))


def extended_collector(
    namespace: str, query: UserQuery, auto_discover: bool, timeout: float
) -> type[ExtendedQueryCollector]:
    """The collector of one queries.yaml entry: in the DSN's database, or, with `--auto-discover-databases`
    and without `master: true`, in every database the per-database collectors visit."""
    columns = query.columns
    label_columns = tuple(c for c, spec in columns.items() if spec.usage == "LABEL")
    label_names = tuple(sorted([*label_columns, "server"]))
    by_column = {
        column: Family(
            f"{namespace}_{column}{'_milliseconds' if spec.usage == 'DURATION' else ''}",
            _KIND[spec.usage],
            spec.description,
            label_names,
            "the query returns no row, or no number in this column",
        )
        for column, spec in columns.items()
        if spec.usage in _KIND
    }
    return _collector(
        ExtendedQueryCollector,
        namespace,
        {
            "namespace": namespace,
            "query": query,
            "label_columns": label_columns,
            "label_names": label_names,
            "discarded": frozenset(c for c, spec in columns.items() if spec.usage in ("LABEL", "DISCARD")),
            "by_column": by_column,
            "sql": query.query,
            "timeout": timeout,
            "per_database": auto_discover and not query.master,
            "default_ttl": float(query.cache_seconds),
            "families": tuple(by_column.values()),
            "source": "queries.yaml (--extend.query-path)",
        },
    )


def untyped_family(namespace: str, column: str, labels: tuple[str, ...]) -> Family:
    """A column the file does not list: postgres_exporter exports it untyped if it reads as a number."""
    return Family(f"{namespace}_{column}", "untyped", f"Unknown metric from {namespace}", labels)


def custom_collector(query: CustomQuery, default_timeout: float) -> type[CustomQueryCollector]:
    """The collector of one `custom_queries:` entry."""
    names: tuple[str, ...] = (
        () if query.databases in (None, "all") else cast(tuple[str, ...], query.databases)
    )
    datname = ("datname",) if query.databases is not None else ()
    help_texts = query.metric_help
    families = tuple(
        Family(m.name, m.type, help_texts[m.name], (*m.labels, *datname), "the query returns no row")
        for m in query.metrics
    )
    return _collector(
        CustomQueryCollector,
        query.name,
        {
            "config": query,
            "sql": query.sql,
            "timeout": query.timeout if query.timeout is not None else default_timeout,
            "database_names": names,
            "per_database": query.databases is not None,
            "families": families,
            "source": "custom_queries",
        },
    )
