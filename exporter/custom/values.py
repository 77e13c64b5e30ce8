"""Column values as postgres_exporter 0.11 reads them: lib/pq's text decoding, then its float and string rules.

lib/pq decodes integers, floats, booleans, timestamps, dates, times and bytea, and hands every other type over
as its text (numeric, interval, json, uuid, arrays...). postgres_exporter turns a value into a sample with
`DbToFloat64` (NULL is NaN, a time its Unix seconds, text must parse as a Go float) and into a label with
`DbToString` (NULL is "", a float in Go's `%v` form). The statement is therefore read in text format with
psycopg's loaders kept only for the types lib/pq decodes; the others arrive as their text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader
from psycopg.types.string import TextLoader

# The type OIDs lib/pq decodes (encode.go textDecode); psycopg's text loaders read them to the same values.
DECODED_OIDS = frozenset(
    {
        16,  # bool
        17,  # bytea
        20,  # int8
        21,  # int2
        23,  # int4
        25,  # text
        700,  # float4 (lib/pq parses it with 64 bits, as psycopg's text loader does)
        701,  # float8
        1043,  # varchar
        18,  # "char"
        1082,  # date
        1083,  # time
        1114,  # timestamp
        1184,  # timestamptz
        1266,  # timetz
    }
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Go's zero time (0000-01-01 00:00 UTC) in Unix seconds: lib/pq parses a `time` onto that date.
_GO_ZERO_DATE = -62167219200

# strconv.ParseFloat: a decimal or hex float, or inf/infinity/nan in any case; no spaces, no underscores.
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)"
)
_GO_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf}
_GO_SPECIAL |= {"+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


def load_as_text(adapters: AdaptersMap) -> None:
    """Make `adapters` (a cursor's) load every type lib/pq leaves as text as its text; the types psycopg
    does not know (enums, domains of extensions) load as text already."""
    for oid in _TEXT_OIDS:
        adapters.register_loader(oid, TextLoader)
    for oid, loader in _INFINITE.items():
        adapters.register_loader(oid, loader)


def _infinity_as_text(base: type[Loader]) -> type[Loader]:
    """`base` reading `infinity` and `-infinity` as text, as lib/pq does (psycopg refuses them)."""

    def load(self: Loader, data: Buffer) -> Any:
        if bytes(data) in (b"infinity", b"-infinity"):
            return bytes(data).decode()
        return base.load(self, data)

    return type(f"Infinite{base.__name__}", (base,), {"load": load})


_INFINITE = {
    1082: _infinity_as_text(DateLoader),
    1114: _infinity_as_text(TimestampLoader),
    1184: _infinity_as_text(TimestamptzLoader),
}


_TEXT_OIDS = tuple(
    oid
    for info in psycopg.adapters.types
    for oid in (info.oid, getattr(info, "array_oid", 0))
    if oid and oid not in DECODED_OIDS
)


def parse_go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64), or None where Go returns an error (out of range included)."""
    special = _GO_SPECIAL.get(text.lower())
    if special is not None:
        return special
    if not _GO_FLOAT.fullmatch(text):
        return None
    value = float.fromhex(text) if "x" in text or "X" in text else float(text)
    return None if math.isinf(value) else value


def unix_seconds(value: dt.datetime | dt.date | dt.time) -> int:
    """Go's time.Unix() of what lib/pq makes of a timestamp, date or time (naive ones are UTC)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(seconds=1)
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()) // dt.timedelta(days=1) * 86400
    offset = value.utcoffset()
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return _GO_ZERO_DATE + seconds - (int(offset.total_seconds()) if offset is not None else 0)


def to_float(value: Any) -> float | None:
    """DbToFloat64: the sample value, NaN for NULL, or None when postgres_exporter skips the column."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return float(unix_seconds(value))
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return parse_go_float(value)
    if isinstance(value, Decimal):  # not from a text-format read; kept for completeness
        return float(value)
    return None


def to_label(value: Any) -> str:
    """DbToString: the label value postgres_exporter gives a column."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return str(unix_seconds(value))
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def go_float(value: float) -> str:
    """Go's `%v` of a float64: the shortest digits that round-trip, in exponent form when the exponent is
    below -4 or at least 6 (fmt's %v is strconv's 'g' with precision -1)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # where the decimal point falls in `digits`
    x = point - 1
    minus = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{minus}{digits}{'0' * (point - len(digits))}"
    return f"{minus}{digits[:point]}.{digits[point:]}"
