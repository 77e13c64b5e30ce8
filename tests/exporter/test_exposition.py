"""The direct text-format renderer: its output must parse, round-trip exactly and pass `promtool check metrics`."""

from __future__ import annotations

import math
import subprocess
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from exporter.exposition import (
    CONTENT_TYPE,
    Exposition,
    Family,
    Fragment,
    escape,
    format_value,
    join_fragments,
)
from tests.support.services import installed

GAUGE = Family("pgw_test_value", "gauge", "A test gauge.")
COUNTER = Family("pgw_test_events_total", "counter", "A test counter.")

TRICKY_LABEL_VALUES = [
    "plain",
    "",
    "back\\slash",
    "trailing backslash\\",
    'double "quoted"',
    "new\nline",
    "\\n is not a newline",
    "unicode: é ß 日本語 🐘",
    "braces {inside}",
    "} closing first {",
    "comma, separated",
    "equals=sign",
    'all at once: \\ " \n { } , = \\"',
    "   spaces around   ",
    "tab\tand carriage\rreturn",
    "# not a comment",
]


def render(expo: Exposition) -> str:
    return join_fragments([expo.fragments()]).decode()


def parse_samples(text: str) -> list[Sample]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def single(text: str) -> Sample:
    samples = parse_samples(text)
    assert len(samples) == 1, text
    return samples[0]


# --- escape and format_value -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a\\b", "a\\\\b"),
        ('a"b', 'a\\"b'),
        ("a\nb", "a\\nb"),
        ('\\"\n', '\\\\\\"\\n'),
        ("{},=", "{},="),
        ("日本", "日本"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (-7, "-7"),
        (2**63 + 1, str(2**63 + 1)),
        (10**30, str(10**30)),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (1e-300, "1e-300"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (True, "1"),
        (False, "0"),
        (Decimal("12.5"), "12.5"),
        (Decimal("-3"), "-3.0"),
        (Decimal("NaN"), "NaN"),
        (Decimal("Infinity"), "+Inf"),
    ],
)
def test_format_value(value: float | int | bool | Decimal, text: str) -> None:
    assert format_value(value) == text


def test_content_type_is_text_format_0_0_4() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


# --- round trips through prometheus_client's parser --------------------------------------------------------


@pytest.mark.parametrize("value", TRICKY_LABEL_VALUES)
def test_label_value_round_trips(value: str) -> None:
    expo = Exposition()
    expo.add(GAUGE, expo.labels(["datname", "relname"], [value, "x"]), 1)
    sample = single(render(expo))
    assert sample.name == "pgw_test_value"
    assert sample.labels == {"datname": value, "relname": "x"}
    assert sample.value == 1.0


def test_every_tricky_label_value_in_one_family_round_trips() -> None:
    expo = Exposition()
    for i, value in enumerate(TRICKY_LABEL_VALUES):
        expo.add(GAUGE, expo.labels(["v", "i"], [value, i]), i)
    samples = parse_samples(render(expo))
    assert [(s.labels["v"], s.value) for s in samples] == [
        (v, float(i)) for i, v in enumerate(TRICKY_LABEL_VALUES)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (42, 42.0),
        (-42, -42.0),
        (2**53, 2**53),
        (10**18 + 7, 10**18 + 7),  # integers are written, and parsed, exactly
        (-(10**30), -(10**30)),
        (-1.5e-7, -1.5e-7),
        (-123456.789, -123456.789),
        (0.1 + 0.2, 0.1 + 0.2),
        (1.7976931348623157e308, 1.7976931348623157e308),
        (5e-324, 5e-324),
        (float("inf"), math.inf),
        (float("-inf"), -math.inf),
        (True, 1.0),
        (False, 0.0),
        (Decimal("0.000123"), 0.000123),
        (Decimal("98765432109876543210"), 98765432109876543210.0),
    ],
)
def test_value_round_trips(value: float | int | bool | Decimal, expected: float) -> None:
    expo = Exposition()
    expo.add(GAUGE, "", value)
    assert single(render(expo)).value == expected


def test_nan_round_trips() -> None:
    expo = Exposition()
    expo.add(GAUGE, "", float("nan"))
    assert math.isnan(single(render(expo)).value)


def test_none_value_is_absent_never_zero() -> None:
    expo = Exposition()
    expo.add(GAUGE, expo.labels(["k"], ["a"]), None)
    expo.add(GAUGE, expo.labels(["k"], ["b"]), 0)
    expo.add_column(GAUGE, [expo.labels(["k"], [k]) for k in "cde"], [None, 3, None])
    samples = parse_samples(render(expo))
    assert [(s.labels["k"], s.value) for s in samples] == [("b", 0.0), ("d", 3.0)]


def test_add_column_matches_add() -> None:
    names = ["datname", "relname"]
    rows = [("db", 'we"ird'), ("db", "a\\b"), ("other", "c\nd")]
    values: list[float | int | None] = [1, 2.5, float("-inf")]
    by_add, by_column = Exposition('target="t"'), Exposition('target="t"')
    for row, v in zip(rows, values, strict=True):
        by_add.add(GAUGE, by_add.labels(names, row), v)
    by_column.add_column(GAUGE, [by_column.labels(names, row) for row in rows], values)
    assert render(by_add) == render(by_column)


def test_add_column_rejects_mismatched_lengths() -> None:
    expo = Exposition()
    with pytest.raises(ValueError):
        expo.add_column(GAUGE, ["", ""], [1])


def test_labels_puts_constant_labels_first_and_escapes_values() -> None:
    expo = Exposition('target="prod"')
    assert expo.labels(["a", "b"], ['x"y', 3]) == '{target="prod",a="x\\"y",b="3"}'
    assert expo.labels([], []) == '{target="prod"}'
    assert Exposition().labels([], []) == ""


def test_labels_rejects_mismatched_names_and_values() -> None:
    with pytest.raises(ValueError):
        Exposition().labels(["a", "b"], ["x"])


def test_constant_labels_round_trip() -> None:
    expo = Exposition('target="db-1"')
    expo.add(GAUGE, expo.labels(["datname"], ["app"]), 7)
    expo.add(COUNTER, expo.labels([], []), 3)
    samples = parse_samples(render(expo))
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("pgw_test_value", {"target": "db-1", "datname": "app"}, 7.0),
        ("pgw_test_events_total", {"target": "db-1"}, 3.0),
    ]


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(st.text(max_size=40), min_size=1, max_size=4),
    value=st.one_of(
        st.floats(allow_nan=False),
        st.integers(min_value=-(10**18), max_value=10**18),
        st.booleans(),
    ),
)
def test_property_labels_and_values_round_trip(labels: list[str], value: float | int | bool) -> None:
    names = [f"l{i}" for i in range(len(labels))]
    expo = Exposition()
    expo.add(GAUGE, expo.labels(names, labels), value)
    sample = single(render(expo))
    assert sample.labels == dict(zip(names, labels, strict=True))
    assert sample.value == value


# --- families, headers, fragments --------------------------------------------------------------------------


def test_header_has_help_and_type() -> None:
    assert GAUGE.header() == "# HELP pgw_test_value A test gauge.\n# TYPE pgw_test_value gauge\n"


def test_help_text_escapes_backslash_and_newline() -> None:
    family = Family("pgw_test_help", "gauge", "Path C:\\data\nsecond line")
    assert family.header().splitlines()[0] == "# HELP pgw_test_help Path C:\\\\data\\nsecond line"
    expo = Exposition()
    expo.add(family, "", 1)
    [parsed] = list(text_string_to_metric_families(render(expo)))
    assert parsed.documentation == "Path C:\\data\nsecond line"
    assert parsed.type == "gauge"


def test_families_without_samples_are_left_out() -> None:
    expo = Exposition()
    empty_by_none = Family("pgw_test_none", "gauge", "Only None values.")
    empty_column = Family("pgw_test_empty_column", "gauge", "An empty column.")
    expo.add(empty_by_none, "", None)
    expo.add_column(empty_column, [], [])
    expo.add_column(empty_column, ['{k="a"}'], [None])
    expo.add(GAUGE, "", 1)
    assert [f.name for f in expo.fragments()] == ["pgw_test_value"]
    text = render(expo)
    assert "pgw_test_none" not in text
    assert "pgw_test_empty_column" not in text


def test_fragments_keep_first_added_order() -> None:
    expo = Exposition()
    fams = [Family(f"pgw_test_f{i}", "gauge", "x") for i in (3, 1, 2)]
    for fam in fams:
        expo.add(fam, "", 1)
    expo.add(fams[0], '{k="again"}', 2)
    assert [f.name for f in expo.fragments()] == ["pgw_test_f3", "pgw_test_f1", "pgw_test_f2"]
    assert expo.fragments()[0].body == b'pgw_test_f3 1\npgw_test_f3{k="again"} 2\n'


def test_fragment_is_utf8() -> None:
    expo = Exposition()
    expo.add(GAUGE, expo.labels(["k"], ["é"]), 1)
    [fragment] = expo.fragments()
    assert fragment.body == 'pgw_test_value{k="é"} 1\n'.encode()


def _target(name: str, families: list[tuple[Family, float]]) -> list[Fragment]:
    expo = Exposition(f'target="{name}"')
    for family, value in families:
        expo.add(family, expo.labels([], []), value)
    return expo.fragments()


def test_join_fragments_groups_each_family_under_one_header() -> None:
    only_b = Family("pgw_test_only_b", "gauge", "Only on b.")
    a = _target("a", [(GAUGE, 1), (COUNTER, 10)])
    b = _target("b", [(COUNTER, 20), (only_b, 5), (GAUGE, 2)])
    text = join_fragments([a, b]).decode()
    assert text == (
        GAUGE.header() + 'pgw_test_value{target="a"} 1\n'
        'pgw_test_value{target="b"} 2\n' + COUNTER.header() + 'pgw_test_events_total{target="a"} 10\n'
        'pgw_test_events_total{target="b"} 20\n' + only_b.header() + 'pgw_test_only_b{target="b"} 5\n'
    )
    assert text.count("# HELP pgw_test_value ") == 1
    assert text.count("# TYPE pgw_test_events_total ") == 1
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert [(s.labels["target"], s.value) for s in parsed["pgw_test_events"].samples] == [
        ("a", 10.0),
        ("b", 20.0),
    ]


def test_join_fragments_of_nothing_is_empty() -> None:
    assert join_fragments([]) == b""
    assert join_fragments([[], []]) == b""


# --- promtool ----------------------------------------------------------------------------------------------


def test_promtool_check_metrics_is_clean() -> None:
    promtool = installed("promtool", "prometheus")
    gauge = Family(
        "pgw_test_table_size_bytes", "gauge", 'Size of a table, with "quotes" and C:\\path\nnewline.'
    )
    counter = Family("pgw_test_seq_scans_total", "counter", "Sequential scans started on a table.")
    ratio = Family("pgw_test_ratio", "gauge", "A ratio that may be undefined.")
    first, second = Exposition('target="a"'), Exposition('target="b"')
    for expo in (first, second):
        names = ["datname", "schemaname", "relname"]
        rows = [("db", "public", v) for v in TRICKY_LABEL_VALUES if v]
        expo.add_column(gauge, [expo.labels(names, r) for r in rows], list(range(len(rows))))
        expo.add_column(
            counter, [expo.labels(names, r) for r in rows], [10**12 + i for i in range(len(rows))]
        )
        expo.add(ratio, expo.labels(["datname"], ["nan"]), float("nan"))
        expo.add(ratio, expo.labels(["datname"], ["inf"]), float("inf"))
        expo.add(ratio, expo.labels(["datname"], ["neg"]), -0.5)
    text = join_fragments([first.fragments(), second.fragments()])
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), text.decode()


def test_promtool_detects_a_counter_without_total_suffix() -> None:
    """Guards the clean check above: promtool really lints what we give it."""
    promtool = installed("promtool", "prometheus")
    expo = Exposition()
    expo.add(Family("pgw_test_events", "counter", "Badly named counter."), "", 1)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=join_fragments([expo.fragments()]),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert b"_total" in result.stdout + result.stderr
