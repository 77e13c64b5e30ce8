"""A small, direct renderer of the Prometheus text exposition format (version 0.0.4).

prometheus_client's generate_latest builds an object per sample and takes seconds for the hundreds of thousands
of series a large database has; here a collector's rows become text with one f-string per sample, and each
family is rendered once per refresh and cached as bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

MetricType = Literal["gauge", "counter", "untyped", "histogram"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: name, type, help text and the label names its samples carry.

    `absent_when` says when the family may have no sample at all (a NULL in its view), else "".
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    absent_when: str = ""

    def header(self) -> str:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n"


@dataclass(frozen=True, slots=True)
class Fragment:
    """The rendered samples of one family from one source, ready to be joined into a response."""

    name: str
    header: bytes
    body: bytes


def escape(value: str) -> str:
    """Escape a label value: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float | int | bool | Decimal) -> str:
    """A sample value as the text format writes it (NaN, +Inf, -Inf for the special floats)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        if math.isfinite(value):
            return repr(value)
        if value != value:
            return "NaN"
        return "+Inf" if value > 0 else "-Inf"
    if kind is bool:
        return "1" if value else "0"
    return format_value(float(value))


class Exposition:
    """Collects samples per family and renders them as fragments.

    `const_labels` (already rendered, like `target="prod"`) comes first in every sample's label set.
    """

    def __init__(self, const_labels: str = "") -> None:
        self._const = const_labels
        # per family: single samples as text, whole columns already encoded (most of the bytes)
        self._families: dict[str, tuple[Family, list[str], list[bytes]]] = {}

    def labels(self, names: Sequence[str], values: Sequence[object]) -> str:
        """`{a="x",b="y"}` with the constant labels first; values are escaped."""
        parts = [f'{n}="{escape(str(v))}"' for n, v in zip(names, values, strict=True)]
        if self._const:
            parts.insert(0, self._const)
        return "{" + ",".join(parts) + "}" if parts else ""

    def label_rows(self, names: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
        """`labels()` for many rows at once (the per-table hot path): one template, filled per row."""
        if not names:
            return [self.labels((), ()) for _ in rows]
        return self.label_columns(names, list(zip(*rows, strict=True)))

    def label_columns(self, names: Sequence[str], columns: Sequence[Iterable[object]]) -> list[str]:
        """`label_rows` given the values column by column: `columns[i]` holds every row's `names[i]`.

        Escaping is decided per column: one scan of the joined column finds whether any value needs it.
        """
        head = "{{" + (self._const.replace("{", "{{").replace("}", "}}") + "," if self._const else "")
        fill = (head + ",".join(f'{n}="{{}}"' for n in names) + "}}").format
        texts: list[Sequence[str]] = []
        for column in columns:
            text = [v if type(v) is str else str(v) for v in column]
            joined = "\0".join(text)
            if "\\" in joined or '"' in joined or "\n" in joined:
                text = [escape(v) for v in text]
            texts.append(text)
        return [fill(*values) for values in zip(*texts, strict=True)]

    def _entry(self, family: Family) -> tuple[Family, list[str], list[bytes]]:
        entry = self._families.get(family.name)
        if entry is None:
            entry = self._families[family.name] = (family, [], [])
        return entry

    def add(
        self, family: Family, labels: str, value: float | int | bool | Decimal | None, suffix: str = ""
    ) -> None:
        """One sample; `labels` comes from `labels()`. A None value adds nothing (absent, never 0). `suffix`
        names a histogram's sample (`_bucket`, `_sum`, `_count`)."""
        if value is None:
            return
        self._entry(family)[1].append(f"{family.name}{suffix}{labels} {format_value(value)}\n")

    def add_column(
        self,
        family: Family,
        labels: Sequence[str],
        values: Iterable[float | int | bool | Decimal | None],
        integers: bool = False,
    ) -> None:
        """Many samples of one family at once: the hot path for per-table and per-index views.

        `integers=True` promises every value is an int or None (an int8 column), which skips formatting.
        """
        name = family.name
        if integers:
            text = "".join(
                [f"{name}{lbl} {v}\n" for lbl, v in zip(labels, values, strict=True) if v is not None]
            )
        else:
            fmt = format_value
            text = "".join(
                [f"{name}{lbl} {fmt(v)}\n" for lbl, v in zip(labels, values, strict=True) if v is not None]
            )
        # Encoded at once, so a column's text never outlives this call (peak memory stays one column).
        self._entry(family)[2].append(text.encode())

    def fragments(self) -> list[Fragment]:
        """The rendered families in the order first added; families without samples are left out."""
        out = []
        for family, lines, chunks in self._families.values():
            body = "".join(lines).encode() + b"".join(chunks) if lines else b"".join(chunks)
            if body:
                out.append(Fragment(family.name, family.header().encode(), body))
        return out


def join_fragments(groups: Iterable[Sequence[Fragment]]) -> bytes:
    """One exposition from several sources, each family's samples kept together under one header."""
    return b"".join(ordered_chunks(groups))


def ordered_chunks(groups: Iterable[Sequence[Fragment]]) -> list[bytes]:
    """The chunks of `join_fragments` without joining them (a response can be written chunk by chunk)."""
    merged: dict[str, tuple[bytes, list[bytes]]] = {}
    for fragments in groups:
        for frag in fragments:
            entry = merged.get(frag.name)
            if entry is None:
                merged[frag.name] = (frag.header, [frag.body])
            else:
                entry[1].append(frag.body)
    chunks: list[bytes] = []
    for header, bodies in merged.values():
        chunks.append(header)
        chunks.extend(bodies)
    return chunks
