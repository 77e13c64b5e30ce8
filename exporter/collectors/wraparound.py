"""Transaction ID wraparound: age of datfrozenxid and datminmxid per database, and the ratio to 2^31."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.db import Session
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


class WraparoundCollector(Collector):
    name = "wraparound"
    source = "pg_database"
    families = with_labels(("datname",), XID_AGE, RATIO, AGE_FROZEN, AGE_MINMXID)

    async def fetch(self, session: Session) -> Any:
        return await session.rows(
            "SELECT datname, age(datfrozenxid)::int8, mxid_age(datminmxid)::int8 FROM pg_database "
            "WHERE datallowconn ORDER BY datname"
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, rows in results:
            for datname, xid_age, mxid_age in rows:
                lbl = out.labels(("datname",), (datname,))
                out.add(XID_AGE, lbl, xid_age)
                out.add(RATIO, lbl, xid_age / WRAP)
                out.add(AGE_FROZEN, lbl, xid_age)
                out.add(AGE_MINMXID, lbl, mxid_age)
