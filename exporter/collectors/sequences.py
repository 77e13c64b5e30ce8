"""pg_sequences in every database: how much of each sequence's range is used, to see exhaustion coming."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

USED_RATIO = gauge(
    "pg_sequence_used_ratio",
    "Part of the sequence's range used (0 to 1): from its start to last_value, in the direction it counts.",
    ("datname", "schemaname", "sequencename"),
    "no sequence has been used, or the role may not read them (pg_sequences hides last_value then)",
)


class SequenceUse(NamedTuple):
    schemaname: str
    sequencename: str
    used_ratio: float


# Descending sequences count down from max_value; numeric arithmetic, since max - min overflows int8.
_SQL = """
SELECT schemaname, sequencename,
       (CASE WHEN increment_by > 0 THEN last_value::numeric - min_value ELSE max_value::numeric - last_value END
        / nullif(max_value::numeric - min_value, 0))::float8 AS used_ratio
FROM pg_sequences
WHERE last_value IS NOT NULL
ORDER BY schemaname, sequencename
"""


class SequencesCollector(Collector[list[SequenceUse], CollectorOptions]):
    name = "sequences"
    per_database = True
    default_ttl = 60.0
    source = "pg_sequences"
    families = (USED_RATIO,)

    async def fetch(self, session: Session) -> list[SequenceUse]:
        return await session.typed(SequenceUse, _SQL)

    def render(self, out: Exposition, results: Sequence[tuple[str, list[SequenceUse]]]) -> None:
        for datname, rows in results:
            for row in rows:
                lbl = out.labels(USED_RATIO.labels, (datname, row.schemaname, row.sequencename))
                out.add(USED_RATIO, lbl, row.used_ratio)
