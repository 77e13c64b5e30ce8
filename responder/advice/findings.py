"""What a generic plan shows that the runbook's "Analyze Query Plans" looks for: sequential scans with a filter
on large tables, nested loops over many outer rows, sorts and hashes the planner expects to be large."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from responder.advice.catalog import Catalog
from responder.advice.plans import nodes

SEQ_SCAN = "sequential scan"
NESTED_LOOP = "nested loop"
LARGE_SORT = "large sort"
LARGE_HASH = "large hash"


@dataclass(frozen=True, slots=True)
class Finding:
    """One plan node worth a look, with its relation, filter and estimated rows."""

    kind: str
    relation: str | None  # schema.table
    filter: str | None
    rows: float  # the node's estimated rows
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "relation": self.relation,
            "filter": self.filter,
            "rows": self.rows,
            "detail": self.detail,
        }


def _relation(node: dict[str, Any]) -> str | None:
    name = node.get("Relation Name")
    if name is None:
        return None
    schema = node.get("Schema")
    return f"{schema}.{name}" if schema else str(name)


def _relation_below(node: dict[str, Any]) -> str | None:
    return next((r for r in map(_relation, nodes(node)) if r is not None), None)


def _top_n_sorts(root: dict[str, Any]) -> set[int]:
    """The Sort nodes right under a Limit (or under a Gather Merge under it): top-N heapsorts, which keep the
    limit's rows only, whatever they read."""
    found: set[int] = set()
    for node in nodes(root):
        if node.get("Node Type") != "Limit":
            continue
        below = list(node.get("Plans", ()))
        while below:
            child = below.pop()
            if child.get("Node Type") == "Sort":
                found.add(id(child))
            elif child.get("Node Type") == "Gather Merge":
                below.extend(child.get("Plans", ()))
    return found


def find(root: dict[str, Any], catalog: Catalog, large_rows: float, outer_rows: float) -> list[Finding]:
    """The findings of one plan: seq scans with a filter on tables over `large_rows` rows, nested loops with an
    outer side over `outer_rows` rows, sorts and hashes larger than work_mem."""
    found: list[Finding] = []
    top_n = _top_n_sorts(root)
    for node in nodes(root):
        kind = node.get("Node Type")
        rows = float(node.get("Plan Rows", 0))
        if kind == "Seq Scan" and node.get("Filter"):
            table = catalog.tables.get((node.get("Schema", "public"), node.get("Relation Name", "")))
            if table is not None and table.rows > large_rows:
                found.append(
                    Finding(
                        SEQ_SCAN, table.display, node["Filter"], rows, f"reads all {table.rows:,.0f} rows"
                    )
                )
        elif kind == "Nested Loop" and node.get("Plans"):
            outer = node["Plans"][0]
            outer_estimate = float(outer.get("Plan Rows", 0))
            if outer_estimate > outer_rows:
                found.append(
                    Finding(
                        NESTED_LOOP,
                        _relation_below(outer),
                        node.get("Join Filter"),
                        rows,
                        f"inner side run for each of {outer_estimate:,.0f} outer rows",
                    )
                )
        elif kind in ("Sort", "Hash") and id(node) not in top_n:
            size = rows * float(node.get("Plan Width", 0))
            if size > catalog.work_mem_bytes:
                found.append(
                    Finding(
                        LARGE_SORT if kind == "Sort" else LARGE_HASH,
                        _relation_below(node),
                        ", ".join(node.get("Sort Key", ())) or None,
                        rows,
                        f"about {size / 1048576:,.1f} MiB, over work_mem ({catalog.work_mem_bytes // 1024} kB)",
                    )
                )
    return found
