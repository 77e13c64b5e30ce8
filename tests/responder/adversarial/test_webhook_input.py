"""Hostile input to the webhook and to every console form: one alert out of range is rejected alone (the good
alert beside it is journaled), and any input answers 2xx, 3xx or 4xx, never 5xx.

The fuzzed responder runs on a real port in a background thread (one app for the module) with an approver and a
viewer; hypothesis drives it with `requests`, bounded to a few dozen examples a test.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devtools.pgserver import PostgresServer
from responder.app import make_app
from responder.config import build_config
from responder.core import ActionRegistry
from tests.responder.adversarial.served import serve
from tests.responder.ui.console import ALICE, VICTOR
from tests.support.responder import AUTH, TOKEN, ClientFactory, ConfigFactory
from tests.support.webhook import alert, payload, wait_done

FUZZ = settings(max_examples=60, deadline=None)
HELD = {"name": "held", "match": {"alertname": "Held"}, "action": "record", "require_approval": True}
REC = {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record"}
NIGHTLY = {"name": "nightly", "cron": "0 3 * * *", "action": "record", "target": {"target": "production"}}


# ---- one alert out of range ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "starts_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00.5+00:01"]
)
async def test_a_timestamp_beyond_utc_is_rejected_alone_and_the_alert_beside_it_is_journaled(
    make_config: ConfigFactory, client_for: ClientFactory, starts_at: str
) -> None:
    client = await client_for(make_config(mode="dry-run"))
    good = alert(fingerprint="good0000")
    resp = await client.post(
        "/webhook", json=payload(alert(fingerprint="bad00000", starts_at=starts_at), good), headers=AUTH
    )
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["rejected"] == 1
    bad, handled = body["decisions"]
    assert bad["outcome"] == "rejected" and "startsAt" in bad["reason"], bad
    assert handled["playbook"] == "rec", handled
    assert (await wait_done(client, handled["id"]))["outcome"] == "dry_run"
    rows = (await (await client.get("/actions", headers=AUTH)).json())["actions"]
    by_fingerprint = {r["alert"].get("fingerprint"): r for r in rows}
    assert by_fingerprint["good0000"]["outcome"] == "dry_run"
    assert by_fingerprint["bad00000"]["outcome"] == "rejected"


# ---- a responder to fuzz ------------------------------------------------------------------------------------


@dataclass
class Console:
    base: str
    session: requests.Session  # signed in as alice, the approver
    csrf: str

    def url(self, path: str) -> str:
        return self.base + path


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def journal_for_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Either journal: a SQLite file, or a fresh database on the fixture PostgreSQL (which refuses NUL in text)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('journal') / 'journal.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    server.execute(f"CREATE DATABASE {name}")
    yield server.dsn(name)
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, registry_for_module: ActionRegistry, journal_for_module: str
) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "alice").write_text(ALICE)
    (folder / "victor").write_text(VICTOR)
    config = build_config(
        {
            "mode": "dry-run",
            "token": TOKEN,
            "journal": journal_for_module,
            "targets": [{"name": "production", "dsn": "postgresql://nobody@127.0.0.1:1/none"}],
            "max_body_bytes": 65536,
            "playbooks": [REC, HELD],
            "schedules": [NIGHTLY],
            "approvers": [{"name": "alice", "token_file": str(folder / "alice")}],
            "viewers": [{"name": "victor", "token_file": str(folder / "victor")}],
        },
        registry_for_module,
    )
    with serve(make_app(config)) as base, requests.Session() as session:
        resp = session.post(f"{base}/webhook", json=payload(alert("Held"), alert()), headers=AUTH, timeout=20)
        assert resp.status_code == 202, resp.text
        login = session.get(f"{base}/ui/login", timeout=20)
        page = session.post(f"{base}/ui/login", data={"token": ALICE, "csrf": _csrf(login.text)}, timeout=20)
        assert page.status_code == 200 and page.url.endswith("/ui"), page.text
        yield Console(base, session, _csrf(page.text))


@pytest.fixture(scope="module")
def registry_for_module() -> ActionRegistry:
    from responder.core import ActionSpec, TargetKind
    from responder.playbooks import default_registry
    from tests.support.responder import Recorder, RecordParams

    registry = default_registry()
    registry.register(ActionSpec(RecordParams, TargetKind.POSTGRES, Recorder().run, name="record"))
    return registry


def assert_not_5xx(resp: requests.Response) -> None:
    assert resp.status_code < 500, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"


# ---- the webhook --------------------------------------------------------------------------------------------

any_timestamp = st.one_of(
    st.datetimes(
        timezones=st.builds(timezone, st.timedeltas(timedelta(hours=-23.9), timedelta(hours=23.9)))
    ).map(datetime.isoformat),
    st.datetimes(min_value=datetime(9999, 12, 31), timezones=st.just(UTC)).map(datetime.isoformat),
    st.text(max_size=40),
    st.integers(),
    st.none(),
)
any_text = st.text(max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=10,
)


@st.composite
def hostile_alerts(draw: st.DrawFn) -> Any:
    base = alert(draw(st.sampled_from(["TestAlert", "Held", "Other"])))
    base["startsAt"] = draw(any_timestamp)
    base["endsAt"] = draw(any_timestamp)
    base["labels"] |= draw(st.dictionaries(any_text, any_text, max_size=3))
    base["fingerprint"] = draw(any_text)
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=2)):
        base[key] = draw(json_values)
    return base if draw(st.integers(0, 9)) else draw(json_values)


@FUZZ
@given(
    alerts=st.lists(hostile_alerts(), max_size=4),
    envelope=st.dictionaries(
        st.sampled_from(["status", "version", "truncatedAlerts", "receiver"]), json_values
    ),
)
def test_webhook_never_answers_5xx(console: Console, alerts: list[Any], envelope: dict[str, Any]) -> None:
    body = payload(*alerts) | envelope
    resp = console.session.post(console.url("/webhook"), data=json.dumps(body), headers=AUTH, timeout=20)
    assert_not_5xx(resp)
    if resp.status_code == 202:  # every alert got a decision: the good ones are never dropped with the bad
        assert len(resp.json()["decisions"]) == len(alerts)


@FUZZ
@given(body=st.binary(max_size=200), authorization=st.binary(max_size=60).filter(lambda b: b"\n" not in b))
def test_webhook_bytes_never_answer_5xx(console: Console, body: bytes, authorization: bytes) -> None:
    for headers in (AUTH, {"Authorization": b"Bearer " + authorization.replace(b"\r", b"")}):
        assert_not_5xx(console.session.post(console.url("/webhook"), data=body, headers=headers, timeout=20))


# ---- the console and the token APIs -------------------------------------------------------------------------

ids = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.text(max_size=30),
    st.sampled_from(["1", "2", "99999999999999999999", "9223372036854775808", "-1", "0", "1e3", "0x10"]),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


def segment(text: str) -> str:
    return urllib.parse.quote(text, safe="") or "x"


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(["playbook", "outcome", "target", "decided", "answer"]), any_text)
)
@example(query={"target": "\x00"})
def test_timeline_filters_never_answer_5xx(console: Console, query: dict[str, str]) -> None:
    resp = console.session.get(console.url("/ui"), params=query, timeout=20)
    assert_not_5xx(resp)
    if resp.status_code == 400:
        assert resp.json()["reason"]
    raw = "&".join(
        f"{k}={urllib.parse.quote(v.encode('utf-8', 'surrogatepass')[:-1])}" for k, v in query.items()
    )
    assert_not_5xx(console.session.get(console.url(f"/ui?{raw}"), timeout=20))  # cut UTF-8 sequences


@FUZZ
@given(
    page=st.sampled_from(
        ["/ui/approvals", "/ui/schedules", "/ui/drills", "/ui/reports", "/ui/login", "/reports"]
    ),
    query=st.dictionaries(any_text, any_text, max_size=3),
)
def test_pages_never_answer_5xx(console: Console, page: str, query: dict[str, str]) -> None:
    assert_not_5xx(console.session.get(console.url(page), params=query, timeout=20))


@FUZZ
@given(
    action_id=ids,
    verb=st.sampled_from(["approve", "reject"]),
    csrf=st.one_of(st.none(), any_text),
    extra=st.dictionaries(any_text, any_text, max_size=2),
)
def test_decision_forms_never_answer_5xx(
    console: Console, action_id: str, verb: str, csrf: str | None, extra: dict[str, str]
) -> None:
    data = extra | {"csrf": console.csrf if csrf is None else csrf}
    path = f"/ui/actions/{segment(action_id)}/{verb}"
    assert_not_5xx(console.session.post(console.url(path), data=data, timeout=20, allow_redirects=False))
    for token in (ALICE, VICTOR, TOKEN):
        headers = {"Authorization": f"Bearer {token}"}
        assert_not_5xx(
            requests.post(console.url(f"/actions/{segment(action_id)}/{verb}"), headers=headers, timeout=20)
        )


@FUZZ
@given(name=any_text, csrf=st.one_of(st.none(), any_text))
def test_schedule_run_now_never_answers_5xx(console: Console, name: str, csrf: str | None) -> None:
    data = {"csrf": console.csrf if csrf is None else csrf}
    path = f"/ui/schedules/{segment(name)}/run"
    assert_not_5xx(console.session.post(console.url(path), data=data, timeout=20, allow_redirects=False))
    assert_not_5xx(requests.post(console.url(f"/schedules/{segment(name)}/run"), headers=AUTH, timeout=20))


@FUZZ
@given(token=any_text, csrf=any_text, use_cookie=st.booleans())
def test_sign_in_never_answers_5xx(console: Console, token: str, csrf: str, use_cookie: bool) -> None:
    with requests.Session() as fresh:
        if use_cookie:
            csrf = _csrf(fresh.get(console.url("/ui/login"), timeout=20).text)
        assert_not_5xx(
            fresh.post(
                console.url("/ui/login"),
                data={"token": token, "csrf": csrf},
                timeout=20,
                allow_redirects=False,
            )
        )


@FUZZ
@given(report_id=ids, fmt=any_text, authorization=header_text, limit=any_text)
def test_reports_and_actions_never_answer_5xx(
    console: Console, report_id: str, fmt: str, authorization: str, limit: str
) -> None:
    for headers in (AUTH, {"Authorization": authorization.strip()}):
        get = requests.get
        assert_not_5xx(
            get(
                console.url(f"/reports/{segment(report_id)}"),
                params={"format": fmt},
                headers=headers,
                timeout=20,
            )
        )
        assert_not_5xx(get(console.url("/actions"), params={"limit": limit}, headers=headers, timeout=20))
        assert_not_5xx(get(console.url("/schedules"), headers=headers, timeout=20))
