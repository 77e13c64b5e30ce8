"""pg_sequences in every database: how much of each sequence's range is used, to see exhaustion coming."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowGaugeCollector, gauge

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


class SequencesCollector(RowGaugeCollector):
    name = "sequences"
    source = "pg_sequences"
    family = USED_RATIO
    row = SequenceUse
    sql = _SQL
    probe = "EXISTS (SELECT FROM pg_class WHERE relkind = 'S')"
