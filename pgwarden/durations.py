"""Duration strings as used in the configuration: `500ms`, `2s`, `5m`, `6h`, `1d` (or `1h30m`)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in a duration string; raises ValueError on anything else."""
    text = text.strip()
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, like 500ms, 2s, 5m or 6h")
    return total


def _coerce(value: Any) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("a duration must be finite")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    raise ValueError("a duration is a string like 500ms, 2s, 5m or 6h")


Duration = Annotated[float, BeforeValidator(_coerce)]
"""Seconds, written in YAML as a duration string (a bare non-negative number is taken as seconds)."""


def format_duration(seconds: float) -> str:
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
