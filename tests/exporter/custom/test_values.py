"""How postgres_exporter 0.11 reads values, formats float labels, and matches runonserver ranges."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from exporter.custom.queries_file import semver_of, version_range
from exporter.custom.values import go_float, parse_go_float, to_float, to_label, unix_seconds


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e6, "1e+06"),
        (100000.0, "100000"),
        (123456.7, "123456.7"),
        (1796118554.0, "1.796118554e+09"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5e-7, "-2.5e-07"),
        (1e21, "1e+21"),
        (12.0, "12"),
        (0.1, "0.1"),
        (0.0, "0"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_float_is_fmt_v(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10.50", 10.5),
        ("-1e3", -1000.0),
        (".5", 0.5),
        ("0x1p-2", 0.25),
        ("Infinity", math.inf),
        ("-inf", -math.inf),
    ],
)
def test_parse_go_float_accepts_what_go_accepts(text: str, value: float) -> None:
    assert parse_go_float(text) == value


@pytest.mark.parametrize("text", ["1_000", " 1", "1h", "", "1e400", "0x1"])
def test_parse_go_float_refuses_what_go_refuses(text: str) -> None:
    assert parse_go_float(text) is None


def test_values_and_labels_of_each_type() -> None:
    moment = dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)
    assert unix_seconds(moment) == -1  # Go's Unix() floors
    assert unix_seconds(dt.datetime(1970, 1, 2)) == 86400  # naive: UTC
    assert unix_seconds(dt.date(1970, 1, 3)) == 2 * 86400
    assert to_float(None) != to_float(None)  # NaN
    assert (to_float(True), to_float(7), to_float("3"), to_float("x"), to_float(b"2.5")) == (
        1,
        7,
        3,
        None,
        2.5,
    )
    assert to_float(Decimal("1.5")) == 1.5
    assert (to_label(None), to_label(False), to_label(1e7), to_label(12), to_label(moment)) == (
        "",
        "false",
        "1e+07",
        "12",
        "-1",
    )


def test_runonserver_ranges() -> None:
    assert semver_of(150004) == (15, 4, 0) and semver_of(90624) == (9, 6, 24)
    admits = version_range(">=13.0.0 <16.0.0 || 18.x")
    assert [admits(semver_of(v)) for v in (120010, 130001, 150004, 160000, 180001)] == [
        False,
        True,
        True,
        False,
        True,
    ]
    assert version_range("!=15.4.0")((15, 4, 0)) is False
    assert version_range("15")((15, 0, 0)) and version_range("=15.x")((15, 9, 0))
    for bad in (">= ten", "", "15.x.1 ||", ">15.x", "~1.2"):
        with pytest.raises(ValueError):
            version_range(bad)
