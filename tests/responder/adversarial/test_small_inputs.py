"""Small hostile inputs: ids beyond the journal's integer range, a NUL or an absurd length in a timeline
filter, and control characters in a logged value."""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pgwarden.logs import StructuredFormatter
from tests.responder.ui.console import ALICE, VICTOR, people, sign_in
from tests.support.responder import AUTH, ClientFactory, ConfigFactory

HUGE = "99999999999999999999"


async def test_ids_beyond_the_journal_are_not_found(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    journal_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    for given_id in (HUGE, str(2**63), "-1", "0"):
        resp = await client.get(f"/reports/{given_id}", headers=AUTH)
        assert resp.status == 404, await resp.text()
        assert (await resp.json())["error"] == "no such report"
        resp = await client.post(f"/actions/{given_id}/approve", headers={"Authorization": f"Bearer {ALICE}"})
        assert resp.status == 404, await resp.text()
    csrf = await sign_in(client, ALICE)
    for verb in ("approve", "reject"):
        resp = await client.post(f"/ui/actions/{HUGE}/{verb}", data={"csrf": csrf}, allow_redirects=False)
        assert resp.status == 404, await resp.text()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("target=%00", "target"),
        ("playbook=a%00b", "playbook"),
        ("outcome=%00", "outcome"),
        ("target=" + "x" * 5000, "target"),
    ],
)
async def test_a_nul_or_an_absurd_length_in_a_filter_is_a_400_with_its_reason(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    journal_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    query: str,
    reason: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    await sign_in(client, VICTOR)
    resp = await client.get(f"/ui?{query}")
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == "bad filter" and body["reason"].startswith(reason), body
    assert (await client.get("/ui?target=production")).status == 200  # an ordinary filter still works


def _record(message: str, value: object) -> logging.LogRecord:
    record = logging.LogRecord("responder", logging.INFO, __file__, 1, message, (), None)
    record.alertname = value
    record.plain = "ok"
    return record


# \x85, \u2028 and \u2029 end a line for str.splitlines (and for some log viewers) though they are not \n.
FORGERIES = [
    "Fake\r\nts=2026 level=error msg=forged",
    "a\rb",
    "a\nb",
    "\x1b[31mred",
    "a\x85b",
    "a\u2028b",
    "\x00",
]


@settings(max_examples=200, deadline=None)
@given(message=st.text(max_size=40), value=st.text(max_size=40))
@example(message="approval", value="Fake\r level=error msg=forged")
@example(message="a\u2029b", value="a\x85b\x0bc\x0cd\x1ce")
def test_a_logfmt_record_is_always_exactly_one_line(message: str, value: str) -> None:
    line = StructuredFormatter("logfmt").format(_record(message, value))
    assert len(line.splitlines()) == 1, repr(line)
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in line), repr(line)
    assert line.endswith(" plain=ok")


@pytest.mark.parametrize("forged", FORGERIES)
def test_control_characters_are_escaped_not_dropped(forged: str) -> None:
    line = StructuredFormatter("logfmt").format(_record("approval", forged))
    assert len(line.splitlines()) == 1, repr(line)
    field = line.split(" alertname=", 1)[1].rsplit(" plain=", 1)[0]
    assert field.startswith('"') and field.endswith('"'), field
    # every character is still there, escaped: unescaping gives the value back
    assert field[1:-1].encode().decode("unicode_escape") == forged
