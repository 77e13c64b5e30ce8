"""The scrape benchmark's exposition check (bench/scrape/exposition.py) on small expositions."""

from __future__ import annotations

import pytest

from bench.scrape.exposition import analyse, samples_of, scrape_errors

VALID = (
    b"# HELP c A counter declared without _total.\n# TYPE c counter\nc 1\n"
    b"# TYPE d_total counter\nd_total 2\n"
    b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\nh_created 5\n'
    b'h_bucket{le="1",x="a"} 1\n'
    b'a 1\na{x="2"} 1\n'
)


def test_a_valid_exposition_counts_series_under_their_written_names() -> None:
    report = analyse(VALID)
    assert (report.problems, report.examples) == (0, [])
    assert report.series == 10 and report.size == len(VALID)
    assert report.names == {
        "c": 1,
        "d_total": 1,
        "h_bucket": 3,
        "h_sum": 1,
        "h_count": 1,
        "h_created": 1,
        "a": 2,
    }
    assert report.by_prefix(("h_",)) == 6


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n', "a is split in two blocks"),
        (b'# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n', "duplicate series"),
        (b"# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE line"),
        (b"# TYPE a foo\na 1\n", "invalid exposition"),
        (b"# TYPE a gauge\na{x=1} 1\n", "invalid exposition"),
        (b"# TYPE a gauge\na 1", "no final line feed"),
        (b"a \xff 1\n", "not UTF-8"),
    ],
)
def test_each_breach_is_one_problem(body: bytes, problem: str) -> None:
    report = analyse(body)
    assert report.problems >= 1 and report.examples[0].startswith(problem), report.examples


def test_scrape_errors_name_what_failed() -> None:
    body = (
        b'# TYPE pg_up gauge\npg_up{target="a"} 1\npg_up{target="b"} 0\n'
        b'pg_scrape_collector_success{collector="locks"} 0\npg_scrape_collector_success{collector="x"} 1\n'
    )
    assert samples_of(body, "pg_up") == [('{target="a"}', "1"), ('{target="b"}', "0")]
    assert scrape_errors(body, pgwarden=True) == "pg_up 0, collector locks failed"
    assert scrape_errors(b"# nothing\n", pgwarden=False) == "no pg_up"
