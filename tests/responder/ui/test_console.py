"""The console over HTTP (the aiohttp test client): sign-in, cookies, CSRF, roles, the timeline's filters,
schedules through the `ScheduleSource` protocol, drills and reports. The browser tests are in
`test_browser`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder import keys
from responder.app import make_app
from responder.outcomes import Outcome
from responder.ui import ScheduleStatus
from responder.ui.console import register_schedules
from tests.responder.report.scenario import journal_drill
from tests.responder.ui.console import ALICE, VICTOR, hidden_csrf, people, sign_in
from tests.support.responder import AUTH, TOKEN, ClientFactory, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done

PENDING = {"name": "held", "match": {"alertname": "Held"}, "action": "record", "require_approval": True}
REC = {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record"}


async def test_sign_in_sets_a_strict_http_only_cookie_and_the_webhook_token_cannot_sign_in(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    resp = await client.get("/ui", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    login = await client.get("/ui/login")
    csrf = hidden_csrf(await login.text())
    # the sign-in form has its own CSRF token: a post without it is refused
    assert (await client.post("/ui/login", data={"token": ALICE})).status == 403
    resp = await client.post("/ui/login", data={"token": TOKEN, "csrf": csrf})
    assert resp.status == 401 and "Not an approver" in await resp.text()
    login = await client.get("/ui/login")
    resp = await client.post(
        "/ui/login", data={"token": ALICE, "csrf": hidden_csrf(await login.text())}, allow_redirects=False
    )
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert "pgwarden_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
    page = await client.get("/ui")
    assert page.status == 200 and 'id="who">alice<' in await page.text()
    csrf = hidden_csrf(await page.text())
    assert (await client.post("/ui/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    assert (await client.get("/ui", allow_redirects=False)).status == 303


async def test_forms_need_the_csrf_token_and_an_approver(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = await client_for(make_config(playbooks=[PENDING], **people(monkeypatch, tmp_path)))
    (d,) = await post_alerts(client, alert("Held"))
    csrf = await sign_in(client, VICTOR)
    page = await (await client.get("/ui/approvals")).text()
    assert f'data-id="{d["id"]}"' in page and "Approve</button>" not in page
    resp = await client.post(f"/ui/actions/{d['id']}/approve", data={"csrf": csrf})
    assert resp.status == 403 and "viewer" in await resp.text()
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, ALICE)
    assert (await client.post(f"/ui/actions/{d['id']}/approve", data={})).status == 403
    assert (await client.post(f"/ui/actions/{d['id']}/approve", data={"csrf": "forged"})).status == 403
    assert (await wait_done(client, d["id"]))["state"] == "pending"
    resp = await client.post(f"/ui/actions/{d['id']}/reject", data={"csrf": csrf})
    assert resp.status == 200 and resp.url.path == "/ui"
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "rejected" and row["decided_by"] == "alice"


async def test_the_timeline_filters_by_playbook_outcome_and_target(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = await client_for(make_config(playbooks=[PENDING, REC], **people(monkeypatch, tmp_path)))
    (held,) = await post_alerts(client, alert("Held"))
    (ran,) = await post_alerts(client, alert("TestAlert"))
    await wait_done(client, ran["id"])
    await sign_in(client, VICTOR)
    page = await (await client.get("/ui")).text()
    assert (
        f'<tr data-id="{held["id"]}" class="decision">' in page
        and f'<tr data-id="{ran["id"]}" class="decision">' in page
    )
    page = await (await client.get("/ui", params={"playbook": "rec"})).text()
    assert f'<tr data-id="{ran["id"]}" class="decision">' in page
    assert f'<tr data-id="{held["id"]}" class="decision">' not in page
    assert "&#34;recorded&#34;: true" in page  # the decision's result, escaped
    page = await (await client.get("/ui", params={"outcome": "pending"})).text()
    assert f'<tr data-id="{ran["id"]}" class="decision">' not in page
    page = await (await client.get("/ui", params={"target": "nowhere"})).text()
    assert "no decisions" in page


class Schedules:
    """A ScheduleSource as the scheduler will be one: statuses, and a run that journals a decision."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    async def statuses(self) -> list[ScheduleStatus]:
        return [
            ScheduleStatus("weekly-report", "0 6 * * 1", "maintenance_report", "enforce", "production",
                           "2026-12-07T06:00:00Z", "2026-11-30T06:00:00Z", "succeeded", 7),
        ]  # fmt: skip

    async def run_now(self, name: str) -> int | None:
        if name != "weekly-report":
            return None
        self.runs.append(name)
        return 8


async def test_schedules_page_with_and_without_a_scheduler(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = make_config(**people(monkeypatch, tmp_path))
    client = await client_for(config)
    await sign_in(client, ALICE)
    assert "No schedules configured." in await (await client.get("/ui/schedules")).text()
    source = Schedules()
    app = make_app(config)
    register_schedules(app, source)  # what the scheduler does, before the app starts
    scheduled = await aiohttp_client(app)
    csrf = await sign_in(scheduled, ALICE)
    page = await (await scheduled.get("/ui/schedules")).text()
    assert (
        "weekly-report" in page
        and "0 6 * * 1" in page
        and "2026-12-07T06:00:00Z" in page
        and "Run now" in page
    )
    assert (await scheduled.post("/ui/schedules/weekly-report/run", data={})).status == 403
    resp = await scheduled.post("/ui/schedules/weekly-report/run", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui?decided=8"
    assert (await scheduled.post("/ui/schedules/nope/run", data={"csrf": csrf})).status == 404
    assert source.runs == ["weekly-report"]


async def test_drills_show_the_last_result_per_instance(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    base = {"checks": [{"name": "rows", "value": 10, "expect": ">= 1", "passed": True}], "source": "snapshot"}
    await journal_drill(journal, {**base, "dbidentifier": "orders-db", "restore_seconds": 900.0,
                                  "recovery_point_age_seconds": 600.0})  # fmt: skip
    newest = await journal_drill(journal, {**base, "dbidentifier": "orders-db", "restore_seconds": 431.0,
                                           "recovery_point_age_seconds": 120.0})  # fmt: skip
    failed = {**base, "dbidentifier": "billing-db", "restore_seconds": 50.0, "recovery_point_age_seconds": 30.0,
              "checks": [{"name": "rows", "value": 0, "expect": ">= 1", "passed": False}]}  # fmt: skip
    await journal_drill(journal, failed, outcome=Outcome.FAILED)
    client = await client_for(make_config(journal=f"sqlite:///{journal}", **people(monkeypatch, tmp_path)))
    await sign_in(client, VICTOR)
    page = await (await client.get("/ui/drills")).text()
    rows = page.split('<tr data-id="')[1:]
    assert [r.split('"')[0] for r in rows][1] == str(
        newest
    )  # billing-db sorts first, then orders-db's newest
    assert "431.0" in rows[1] and "120.0" in rows[1] and "900.0" not in page
    assert "billing-db" in rows[0] and "failed" in rows[0] and "✘ rows" in rows[0]


async def test_reports_need_a_token_or_a_session(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    assert (await client.get("/reports")).status == 401
    assert (await client.get("/reports/1")).status == 401
    for headers in (AUTH, {"Authorization": f"Bearer {VICTOR}"}):
        resp = await client.get("/reports", headers=headers)
        assert resp.status == 200 and (await resp.json()) == {"reports": []}
    assert (await client.get("/reports/1", headers=AUTH)).status == 404
    assert client.app[keys.CONFIG].principal(TOKEN) is None


async def test_a_decisions_own_page_is_where_a_notification_links(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = await client_for(make_config(playbooks=[PENDING, REC], **people(monkeypatch, tmp_path)))
    (held,) = await post_alerts(client, alert("Held"))
    (ran,) = await post_alerts(client, alert("TestAlert"))
    await wait_done(client, ran["id"])
    resp = await client.get(f"/ui/actions/{held['id']}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/ui/login?next=/ui/actions/{held['id']}"
    login = await (await client.get(resp.headers["Location"])).text()
    assert f'name="next" value="/ui/actions/{held["id"]}"' in login
    resp = await client.post(
        "/ui/login",
        data={"token": ALICE, "csrf": hidden_csrf(login), "next": f"/ui/actions/{held['id']}"},
        allow_redirects=False,
    )
    assert (
        resp.status == 303 and resp.headers["Location"] == f"/ui/actions/{held['id']}"
    )  # back where it linked
    page = await (await client.get(f"/ui/actions/{held['id']}")).text()
    assert f'data-id="{held["id"]}"' in page and "Approve</button>" in page
    assert f'data-id="{ran["id"]}"' not in page
    done = await (await client.get(f"/ui/actions/{ran['id']}")).text()
    assert f"Decision #{ran['id']}" in done and "Approve</button>" not in done  # nothing left to decide
    for missing in ("999999", "0", "-1", "abc", "1e3", "%00"):
        assert (await client.get(f"/ui/actions/{missing}")).status == 404, missing


@pytest.mark.parametrize(
    "hostile",
    ["//evil.example", "https://evil.example/ui/actions/1", "/\\evil.example", "/ui/actions/1/../../x",
     "/ui/actions/1?x=//evil", "/ui/actions/", "javascript:alert(1)", "/ui/actions/1\n", ""],
)  # fmt: skip
async def test_sign_in_returns_only_to_a_console_page(
    hostile: str, make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    login = await (await client.get("/ui/login", params={"next": hostile})).text()
    assert 'name="next" value="/ui"' in login
    resp = await client.post(
        "/ui/login", data={"token": ALICE, "csrf": hidden_csrf(login), "next": hostile}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/ui"
