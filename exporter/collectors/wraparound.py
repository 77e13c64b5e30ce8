"""Transaction ID wraparound: age of datfrozenxid and datminmxid per database, and the ratio to 2^31."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import RowsCollector, add_samples, gauge, with_labels
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Exposition

XID_AGE = gauge(
    "pg_database_xid_age", "Age of the database's oldest unfrozen transaction ID, in transactions."
)
RATIO = gauge(
    "pg_database_wraparound_ratio",
    "xid age divided by 2^31: at 1 the server stops accepting writes to prevent wraparound.",
)
AGE_FROZEN = gauge(
    "pg_database_wraparound_age_datfrozenxid_seconds",
    "Age of datfrozenxid in transactions (postgres_exporter's name, whatever its unit suffix says).",
)
AGE_MINMXID = gauge(
    "pg_database_wraparound_age_datminmxid_seconds",
    "Age of datminmxid in multixacts (postgres_exporter's name, whatever its unit suffix says).",
)
WRAP = 2**31


LABELS = ("datname",)


class Ages(NamedTuple):
    datname: str
    xid_age: int
    mxid_age: int


class WraparoundCollector(RowsCollector[Ages, CollectorOptions]):
    name = "wraparound"
    order = 100
    source = "pg_database (age(datfrozenxid), mxid_age(datminmxid))"
    families = with_labels(LABELS, XID_AGE, RATIO, AGE_FROZEN, AGE_MINMXID)
    row = Ages
    sql = (
        "SELECT datname, age(datfrozenxid)::int8 AS xid_age, mxid_age(datminmxid)::int8 AS mxid_age "
        "FROM pg_database WHERE datallowconn ORDER BY datname"
    )

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Ages]]]) -> None:
        for _, rows in results:
            for datname, xid_age, mxid_age in rows:
                ages = (xid_age, xid_age / WRAP, xid_age, mxid_age)  # in the order of the families
                add_samples(out, out.labels(LABELS, (datname,)), self.families, ages)
