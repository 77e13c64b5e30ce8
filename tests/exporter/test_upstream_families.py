"""The README's table of every postgres_exporter family: generated from the copy of upstream's families and
pgwarden's collectors, every difference explained, and consistent with the flags' collector mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.upstream_families import (
    BEGIN,
    END,
    FIXTURE,
    NOTES,
    UnexplainedDifference,
    rows,
    table,
    upstream_families,
)
from exporter.upstream_collectors import UPSTREAM_BY_NAME, UPSTREAM_COLLECTORS

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_generated() -> None:
    readme = (ROOT / "README.md").read_text()
    assert BEGIN in readme and END in readme
    documented = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == table().strip(), "run: python -m devtools.upstream_families --write"


def test_every_family_is_same_or_says_why() -> None:
    found = rows()
    assert len(found) == len(upstream_families())
    for row in found:
        assert row.status in ("same", "different", "missing"), row
        if row.status != "same":
            assert row.reason, row.name
        if row.status != "missing" and not row.name.endswith("*"):
            assert row.ours, row.name  # the pgwarden collector that exports it


def test_a_difference_without_a_reason_fails_the_generation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    extra = tmp_path / "families.yaml"
    extra.write_text(
        FIXTURE.read_text()
        + "- {collector: wal, name: pg_wal_archived_bytes, type: gauge, labels: [], versions: 13-18}\n"
    )
    monkeypatch.setattr("devtools.upstream_families.FIXTURE", extra)
    monkeypatch.setattr(
        "devtools.upstream_families.upstream_families", lambda path=extra: upstream_families(path)
    )
    with pytest.raises(UnexplainedDifference, match="pg_wal_archived_bytes"):
        rows()
    monkeypatch.setitem(NOTES, "pg_nonexistent", ("missing", "a stale note"))
    monkeypatch.setattr(
        "devtools.upstream_families.upstream_families", lambda path=FIXTURE: upstream_families(path)
    )
    with pytest.raises(UnexplainedDifference, match="pg_nonexistent"):
        rows()


def test_the_collectors_of_the_table_are_those_of_the_flags() -> None:
    """Each family of a postgres_exporter collector is one its --no-collector.<name> flag leaves out."""
    collectors = {str(r["collector"]) for r in upstream_families()}
    assert {u.name for u in UPSTREAM_COLLECTORS} == {c for c in collectors if not c.startswith("(")}
    for row in rows():
        upstream = UPSTREAM_BY_NAME.get(row.collector)
        if upstream is None or row.status == "missing":
            continue
        owned = {name for part in upstream.parts for name in part.names()}
        assert row.name in owned, (row.collector, row.name)
