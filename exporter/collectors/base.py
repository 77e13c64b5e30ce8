"""The collector interface: fetch typed rows from one database, render them as metric families.

A collector is a module of this package defining one concrete `Collector` subclass; the registry finds it
(see `exporter.collectors.registry`). Its class attributes say what it is: `name` (its `collectors.<name>`
key and `collector` label), `per_database`, `default_ttl`, `order` (its place in the output), `options_model`,
`families` (with their labels) and `source`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from exporter.collectors.options import CollectorOptions, LimitsConfig
from exporter.db import Session, check_row_names
from exporter.exposition import Exposition, Family

ROWS_CUT = Family(
    "pg_exporter_rows_cut",
    "gauge",
    "Rows left out by a cardinality cap in the last refresh (limits: in the configuration).",
    ("collector", "datname"),
    "no capped collector is enabled",
)

INTEGER_CASTS = ("int8", "int4")

ResultT = TypeVar("ResultT")
RowT = TypeVar("RowT", bound=tuple[Any, ...])
OptionsT = TypeVar("OptionsT", bound=CollectorOptions)
KeysT = TypeVar("KeysT", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a view exported as one metric family; `scale` converts units (ms to seconds)."""

    column: str
    family: Family
    min_version: int = 0
    max_version: int = 10**7
    scale: float | None = None
    cast: str = "int8"

    def __post_init__(self) -> None:
        # A column some server versions lack: its family may have no sample at all there.
        if not self.family.absent_when and (self.min_version > 0 or self.max_version < 10**7):
            since = f"PostgreSQL {self.min_version // 10000}+" if self.min_version else ""
            until = f"before PostgreSQL {self.max_version // 10000}" if self.max_version < 10**7 else ""
            only = " and ".join(p for p in (since, until) if p)
            object.__setattr__(
                self, "family", replace(self.family, absent_when=f"the column exists on {only} only")
            )

    @property
    def select(self) -> str:
        return f"({self.column})::{self.cast}"


def counter(name: str, help_text: str, labels: Sequence[str] = (), absent_when: str = "") -> Family:
    return Family(name, "counter", help_text, tuple(labels), absent_when)


def gauge(name: str, help_text: str, labels: Sequence[str] = (), absent_when: str = "") -> Family:
    return Family(name, "gauge", help_text, tuple(labels), absent_when)


def with_labels(labels: Sequence[str], *families: Family) -> tuple[Family, ...]:
    """The families, each declaring the labels its samples carry."""
    return tuple(replace(f, labels=tuple(labels)) for f in families)


def available(columns: Sequence[Column], version: int) -> list[Column]:
    """The columns this server version has."""
    return [c for c in columns if c.min_version <= version < c.max_version]


def select_list(columns: Sequence[Column]) -> str:
    return ", ".join(c.select for c in columns)


def cap_clause(limit: int) -> str:
    """A LIMIT for a capped query (0 = no cap); the limit is an int from validated config."""
    return f"LIMIT {int(limit)}" if limit > 0 else ""


@dataclass(frozen=True, slots=True)
class ColumnTable(Generic[KeysT]):
    """A statement's rows, column by column: its leading fields as `keys`, a NamedTuple whose fields are those
    columns (ids, label values), and the metric columns after them as `values` (`values[i]` is `columns[i]`).

    Nothing is built per row: the per-table views have tens of thousands of rows, rendered a column at a time.
    """

    keys: KeysT
    columns: Sequence[Column]
    values: list[tuple[Any, ...]]
    count: int  # rows


async def fetch_table(
    session: Session, keys: type[KeysT], columns: Sequence[Column], sql: str, params: Any = None
) -> ColumnTable[KeysT]:
    """Run `sql`, which selects `keys`' fields (by those names, in order) and then `columns`."""
    table, _ = await fetch_table_probing(session, keys, columns, sql, params)
    return table


async def fetch_table_probing(
    session: Session,
    keys: type[KeysT],
    columns: Sequence[Column],
    sql: str,
    params: Any = None,
    probes: Sequence[str] = (),
) -> tuple[ColumnTable[KeysT], list[Any] | None]:
    """`fetch_table` of a statement that selects `probes` (one value for the whole statement, in every row)
    after `columns`: the table, and the probes' values (None when there is no row to read them from)."""
    names, rows = await session.named_rows(sql, params)
    fields: tuple[str, ...] = getattr(keys, "_fields")  # noqa: B009 (a NamedTuple: the tuple bound lacks it)
    check_row_names(keys.__name__, names[: len(fields)], fields)
    check_row_names("probes", names[len(names) - len(probes) :], probes)
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in names]  # one C-level transpose
    values = by_column[len(fields) : len(by_column) - len(probes)]
    table = ColumnTable(keys(*by_column[: len(fields)]), columns, values, len(rows))
    return table, [rows[0][len(names) - len(probes) + i] for i in range(len(probes))] if rows else None


def render_table(out: Exposition, labels: Sequence[str], table: ColumnTable[Any]) -> None:
    """One family per column of `table`, the i-th sample of each carrying `labels[i]`."""
    if not table.count:
        return
    for col, values in zip(table.columns, table.values, strict=True):
        column: Any = values
        if col.scale is not None:
            scale = col.scale
            column = [None if v is None else v * scale for v in values]
        out.add_column(col.family, labels, column, integers=col.scale is None and col.cast in INTEGER_CASTS)


def render_cut(out: Exposition, collector: str, datname: str, total: int, kept: int) -> None:
    out.add(ROWS_CUT, out.labels(ROWS_CUT.labels, (collector, datname)), max(0, total - kept))


def add_samples(
    out: Exposition, labels: str, families: Sequence[Family], values: Sequence[float | int | None]
) -> None:
    """One sample of each of `families` with the same `labels`: `values[i]` for `families[i]`."""
    for family, value in zip(families, values, strict=True):
        out.add(family, labels, value)


def render_capped(
    out: Exposition,
    collector: str,
    datname: str,
    labels: Sequence[str],
    table: ColumnTable[Any],
    *sizes: tuple[Family, Sequence[int | None]],
) -> None:
    """One database's capped table, whose keys have `total` (its rows before the cap, in every row):
    `render_table`, then each of `sizes` (an int8 family and its column), then the rows the cap left out."""
    if table.count:
        render_table(out, labels, table)
        for family, column in sizes:
            out.add_column(family, labels, column, integers=True)
    render_cut(out, collector, datname, table.keys.total[0] if table.count else 0, table.count)


SharedT = TypeVar("SharedT")


def take_shared(session: Session, name: str, kind: type[SharedT]) -> SharedT | None:
    """What another collector of the visit read for collector `name` (see `Collector.probe`), taken out."""
    shared = session.shared.pop(name, None)
    if shared is not None and not isinstance(shared, kind):
        raise TypeError(f"{name}: shared result is a {type(shared).__name__}, not a {kind.__name__}")
    return shared


class Collector(abc.ABC, Generic[ResultT, OptionsT]):
    """A source of metric families: `fetch` returns a `ResultT` per database, `render` turns them into samples.

    Server-wide collectors fetch once from the DSN's database; per-database collectors fetch from every
    database of the server and render all their results together (a family must stay in one block).
    """

    name: ClassVar[str]
    per_database: ClassVar[bool] = False
    default_ttl: ClassVar[float] = 0.0
    order: ClassVar[int] = 1000  # output and documentation order; ties go by name
    options_model: ClassVar[type[CollectorOptions]] = CollectorOptions
    families: ClassVar[tuple[Family, ...]]  # with their labels, for the reference and its test
    source: ClassVar[str]  # the view or function read, for the reference
    # A per-database collector's boolean SQL expression, false when its statement can have no row in the
    # database (no sequence, no invalid index): the visit's first statement evaluates the probes of the
    # collectors refreshed with it, and leaves an empty result in `session.shared` for those that are false,
    # which then run no statement of their own (on a small database, most of them; see `take_shared`).
    probe: ClassVar[str] = ""

    def __init__(self, options: OptionsT, limits: LimitsConfig) -> None:
        self.options = options
        self.limits = limits

    def choose_databases(self, visited: Sequence[str]) -> Sequence[str]:
        """The databases a per-database collector fetches from, given those the target's rules let it visit."""
        return visited

    @abc.abstractmethod
    async def fetch(self, session: Session) -> ResultT:
        """Query one database; return typed rows (no metrics here)."""

    @abc.abstractmethod
    def render(self, out: Exposition, results: Sequence[tuple[str, ResultT]]) -> None:
        """Turn (datname, fetch result) pairs into samples."""


class RowsCollector(Collector[list[RowT], OptionsT]):
    """One statement (`sql`, with `params()`) whose rows are `row`s, a NamedTuple naming its columns.

    Unless a subclass renders otherwise, each row is one sample of every family in `families`: the row's first
    fields are the label values the families declare (after `datname`, the database the row was read from, for
    a per-database collector), and the fields after them the values, `families[i]`'s the i-th (None: no
    sample). A row with no field after its labels is a fact: 1 (as an invalid index is).
    """

    row: ClassVar[type[tuple[Any, ...]]]

    @property
    @abc.abstractmethod
    def sql(self) -> str:
        """The statement (a class attribute in a concrete collector)."""

    def params(self) -> Any:
        """The statement's parameters, from the options (none unless a subclass says so)."""
        return None

    async def fetch(self, session: Session) -> list[RowT]:
        rows: list[Any] | None = take_shared(session, self.name, list)
        if rows is None:
            rows = await session.typed(self.row, self.sql, self.params())
        return rows

    def render(self, out: Exposition, results: Sequence[tuple[str, list[RowT]]]) -> None:
        families = self.families
        names = families[0].labels
        from_row = len(names) - 1 if self.per_database else len(names)  # the labels the row holds
        for datname, rows in results:
            database = (datname,) if self.per_database else ()
            for row in rows:
                labels = out.labels(names, (*database, *row[:from_row]))
                add_samples(out, labels, families, row[from_row:] or (1,))


class RowGaugeCollector(RowsCollector[Any, CollectorOptions]):
    """Per database, one statement whose every row is one sample of `family` (see `RowsCollector.render`)."""

    per_database = True
    default_ttl = 60.0
    family: ClassVar[Family]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in vars(cls):
            cls.families = (cls.family,)


class ServerWide(NamedTuple):
    """No key columns: a view with one row for the whole server."""


class ColumnsCollector(Collector[ColumnTable[Any] | None, OptionsT]):
    """One server-wide statement read as a `ColumnTable` (`render_table`): its `keys` are the label values the
    families declare, in order, and each column after them one family."""

    keys: ClassVar[type[tuple[Any, ...]]] = ServerWide  # a NamedTuple of sequences, as `fetch_table` takes it

    @abc.abstractmethod
    def statement(self, version_num: int) -> tuple[Sequence[Column], str] | None:
        """The columns this server version has and the statement reading them; None when it lacks the view (no
        sample and no failure)."""

    async def fetch(self, session: Session) -> ColumnTable[Any] | None:
        read = self.statement(session.server.version_num)
        if read is None:
            return None
        columns, sql = read
        return await fetch_table(session, self.keys, columns, sql)

    def render(self, out: Exposition, results: Sequence[tuple[str, ColumnTable[Any] | None]]) -> None:
        names = self.families[0].labels
        for _, table in results:
            if table is not None:
                labels = out.label_columns(names, table.keys) if names else [out.labels((), ())] * table.count
                render_table(out, labels, table)
