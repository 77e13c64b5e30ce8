"""The advice: per database, each statement's findings, the statements not planned and why, and the index
recommendations with the evidence (statements served, cost before and after, the table's size and writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from responder.advice.findings import Finding
from responder.advice.statements import Statement

ENABLE_HYPOPG = (
    "index advice needs the hypopg extension in this database: `CREATE EXTENSION hypopg;` (by a role with"
    " CREATE on the database; on RDS and Aurora hypopg is a supported extension, on Debian/Ubuntu install"
    " postgresql-<major>-hypopg). It creates nothing on disk: hypothetical indexes live in the advisor's session."
)


def statement_json(statement: Statement) -> dict[str, Any]:
    return {
        "queryid": statement.queryid,
        "calls": statement.calls,
        "mean_ms": round(statement.mean_ms, 3),
        "total_ms": round(statement.total_ms, 3),
        "text": statement.text,
    }


@dataclass(frozen=True, slots=True)
class Served:
    """A statement a recommended index serves, with its estimated cost without and with it."""

    statement: Statement
    cost_before: float
    cost_after: float

    def to_json(self) -> dict[str, Any]:
        return {
            **statement_json(self.statement),
            "cost_before": round(self.cost_before, 2),
            "cost_after": round(self.cost_after, 2),
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One index to create, and the evidence for it."""

    schema: str
    table: str
    columns: tuple[str, ...]
    create_statement: str  # CREATE INDEX CONCURRENTLY, identifiers quoted
    served: tuple[Served, ...]
    index_bytes: int  # hypopg's estimate of the index's size
    table_bytes: int
    writes_per_second: float
    write_heavy: bool

    @property
    def weighted_before(self) -> float:
        """The served statements' estimated cost, weighted by calls, without the index."""
        return sum(s.cost_before * s.statement.calls for s in self.served)

    @property
    def weighted_after(self) -> float:
        return sum(s.cost_after * s.statement.calls for s in self.served)

    @property
    def saving(self) -> float:
        """The fraction of the weighted cost the index saves."""
        before = self.weighted_before
        return 1 - self.weighted_after / before if before else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "table": f"{self.schema}.{self.table}",
            "columns": list(self.columns),
            "create_statement": self.create_statement,
            "statements": [s.to_json() for s in self.served],
            "cost_before": round(self.weighted_before, 2),
            "cost_after": round(self.weighted_after, 2),
            "saving": round(self.saving, 4),
            "index_bytes": self.index_bytes,
            "table_bytes": self.table_bytes,
            "writes_per_second": round(self.writes_per_second, 2),
            "write_heavy": self.write_heavy,
        }


@dataclass(frozen=True, slots=True)
class StatementPlan:
    """A planned statement: its generic plan's cost and findings."""

    statement: Statement
    cost: float
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            **statement_json(self.statement),
            "cost": round(self.cost, 2),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class NotPlanned:
    """A top statement not planned: refused by the advisor, or by the server."""

    statement: Statement
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**statement_json(self.statement), "reason": self.reason}


@dataclass
class DatabaseAdvice:
    """The advice for one database."""

    database: str
    hypopg: str | None = None  # its version; None: no index advice, `hypopg_hint` says how to enable it
    plans: list[StatementPlan] = field(default_factory=list)
    not_planned: list[NotPlanned] = field(default_factory=list)
    other_kinds: int = 0  # top statements of other kinds (utility, INSERT ... VALUES), not planned
    recommendations: list[Recommendation] = field(default_factory=list)
    error: str | None = None  # the database could not be examined at all

    @property
    def hypopg_hint(self) -> str | None:
        return ENABLE_HYPOPG if self.hypopg is None and self.error is None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "hypopg": self.hypopg,
            "hypopg_hint": self.hypopg_hint,
            "error": self.error,
            "recommendations": [r.to_json() for r in self.recommendations],
            "plans": [p.to_json() for p in self.plans],
            "not_planned": [n.to_json() for n in self.not_planned],
            "other_kinds": self.other_kinds,
        }


@dataclass
class Advice:
    """The advice for one target."""

    target: str
    server_version: int
    databases: list[DatabaseAdvice] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the run
    error: str | None = None  # the target could not be read (no pg_stat_statements, refused)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "server_version": self.server_version,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "databases": [d.to_json() for d in self.databases],
        }
