"""The console's side of issue 23's approvals under attack: a session id chosen by the attacker (fixation), the
sign-in's `next` pointed elsewhere, a session kept after its approver was made a viewer, and the journal going
away the moment an approval is committed (it must neither be lost nor decided twice once the journal is back)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from devtools.pgserver import PostgresServer
from responder import keys
from responder.ui.confirm import CONFIRM_COOKIE
from responder.ui.sessions import COOKIE
from tests.responder.approvals.people import ALICE, BOB, Client, form_csrf, link, open_link, people
from tests.responder.ui.console import hidden_csrf, sign_in
from tests.support.journal import journal_sql
from tests.support.responder import ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, post_alerts, wait_done


async def held(client: Client) -> int:
    """A decision of the `held` playbook (one approval needed), waiting: its id."""
    (d,) = await post_alerts(client, alert("Held", target="production", datname="app"))
    assert d["state"] == "pending", d
    return int(d["id"])


def session_cookie(client: Client) -> str | None:
    found = client.session.cookie_jar.filter_cookies(client.make_url("/ui")).get(COOKIE)
    return None if found is None else found.value


async def test_a_session_id_chosen_by_an_attacker_is_never_signed_in(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = make_config(**people(monkeypatch, tmp_path))
    victim, attacker = await client_for(config), await client_for(config)
    action_id = await held(victim)
    chosen = "attacker-chosen-session-id-0123456789"
    victim.session.cookie_jar.update_cookies({COOKIE: chosen})  # planted before the victim signs in
    resp = await victim.get("/ui", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    await sign_in(victim, ALICE)
    assert session_cookie(victim) not in (None, chosen)  # a fresh id, made by the server
    attacker.session.cookie_jar.update_cookies({COOKIE: chosen})
    assert (await attacker.get("/ui", allow_redirects=False)).status == 303
    csrf_guess = re.sub(r"[^0-9a-f]", "0", chosen)
    resp = await attacker.post(f"/ui/actions/{action_id}/approve", data={"csrf": csrf_guess})
    assert resp.status == 403
    assert (await wait_done(victim, action_id))["state"] == "pending" and recorder.runs == []


NEXT = [
    "https://evil.example/",
    "//evil.example/ui/actions/1",
    "/\\evil.example",
    "/ui/actions/1/../../../evil",
    "/ui/actions/1\n",
    "/ui/actions/1%0d%0aSet-Cookie:x=1",
    "/ui/actions/\u0661",  # an Arabic-Indic digit
    "/ui/actions/1?next=https://evil.example",
    "javascript:alert(1)",
    "/ui/actions/1#@evil.example",
]


@pytest.mark.parametrize("target", NEXT)
async def test_the_sign_in_returns_only_to_a_console_page(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    target: str,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    page = await client.get("/ui/login", params={"next": target})
    html = await page.text()
    assert 'name="next" value="/ui"' in html, html
    resp = await client.post(
        "/ui/login",
        data={"token": ALICE, "csrf": hidden_csrf(html), "next": target},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/ui"


async def test_a_session_kept_after_its_approver_was_made_a_viewer_decides_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(**before))
    action_id = await held(old)
    csrf = await sign_in(old, ALICE)
    cookie = session_cookie(old)
    assert cookie is not None
    await old.close()
    demoted: dict[str, Any] = {
        **before,
        "approvers": [a for a in before["approvers"] if a["name"] != "alice"],
        "viewers": [*before["viewers"], {"name": "alice", "token_env": "PGW_TEST_ALICE_TOKEN"}],
    }
    client = await client_for(make_config(**demoted))
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    page = await client.get("/ui", allow_redirects=False)
    assert page.status == 200  # she may still read, as the viewer she now is
    for verb in ("approve", "reject"):
        resp = await client.post(
            f"/ui/actions/{action_id}/{verb}", data={"csrf": csrf}, allow_redirects=False
        )
        assert resp.status == 403 and "viewer" in await resp.text()
    resp = await client.post(f"/actions/{action_id}/approve", headers={"Authorization": f"Bearer {ALICE}"})
    assert resp.status == 403
    row = await wait_done(client, action_id)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []


async def test_the_journal_going_away_right_after_an_approval_neither_loses_it_nor_decides_it_twice(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
    pg_server: PostgresServer,
) -> None:
    """The journal's database refuses every connection (its sessions ended) the moment the transaction that
    approved a decision has committed, then comes back: the approval, committed, runs once (or, if the
    journal stayed away too long for it to start, ends `interrupted`): never left `queued` with nobody to run
    it, and nothing decides it again afterwards."""
    client = await client_for(make_config(journal=pg_journal, **people(monkeypatch, tmp_path)))
    action_id = await held(client)
    path = link(client, "alice", action_id)
    status, page = await open_link(client, path)
    csrf = form_csrf(page)
    assert status == 200 and csrf is not None
    dbname = conninfo_to_dict(pg_journal)["dbname"]

    def cut(allow: bool) -> None:
        pg_server.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS {str(allow).lower()}")
        if not allow:
            pg_server.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                params=(dbname,),
            )

    def queued() -> bool:
        found = journal_sql(pg_journal, "SELECT state FROM pgwarden_actions WHERE id = ?", (action_id,))
        return found[0][0] == "queued"

    store = client.app[keys.JOURNAL].store
    real_run = store.run
    cut_once = asyncio.Event()

    async def run_then_cut(op: Any, heavy: bool = False) -> Any:
        result = await real_run(op, heavy)
        if not cut_once.is_set() and await asyncio.to_thread(queued):
            cut_once.set()
            await asyncio.to_thread(cut, False)
        return result

    monkeypatch.setattr(store, "run", run_then_cut)
    try:
        resp = await client.post(path, data={"csrf": csrf, "decision": "approve"})
        text = await resp.text()
        assert cut_once.is_set()
        assert resp.status != 500
        # approved it is: a page that says nothing was decided would send the approver to approve again
        assert "nothing was decided" not in text, text
    finally:
        await asyncio.to_thread(cut, True)
    row = await wait_done(client, action_id, wait=30)
    assert row["outcome"] in ("succeeded", "interrupted"), row
    assert len(recorder.runs) == (1 if row["outcome"] == "succeeded" else 0)
    # the same press again, and alice from the token API: the decision is decided once
    client.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
    again = await client.post(path, data={"csrf": csrf, "decision": "approve"})
    assert again.status == 409
    resp = await client.post(f"/actions/{action_id}/approve", headers={"Authorization": f"Bearer {BOB}"})
    assert resp.status == 409
    assert len(recorder.runs) <= 1


async def raw_status(
    client: Client,
    method: str,
    path: str,
    cookie: bytes,
    body: bytes = b"",
    content_type: str = "application/x-www-form-urlencoded",
) -> int:
    """The status of a request sent byte for byte (a cookie that is not UTF-8, which no client library sends)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    writer.write(head + b"Cookie: " + cookie + b"\r\n\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def test_cookies_that_are_not_utf8_are_no_session_and_no_csrf_token_never_a_500(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A cookie another site under the same domain planted, of bytes that are not UTF-8: every console page, the
    sign-in and the confirmation page answer it as no session and no CSRF token (a redirect to sign in, a 403),
    never a 500 that would lock the approver out of the console."""
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await held(client)
    path = link(client, "alice", action_id)
    _, page = await open_link(client, path)
    csrf = (form_csrf(page) or "").encode()
    bad = b"\xff\xfe\x80"
    asked = [
        ("GET", "/ui", COOKIE.encode() + b"=" + bad, b"", 303),
        ("GET", "/ui/approvals", COOKIE.encode() + b"=" + bad, b"", 303),
        ("POST", f"/ui/actions/{action_id}/approve", COOKIE.encode() + b"=" + bad, b"csrf=x", 403),
        ("POST", "/ui/login", b"pgwarden_login=" + bad, b"csrf=x&token=" + ALICE.encode(), 403),
        ("POST", path, CONFIRM_COOKIE.encode() + b"=" + bad, b"decision=approve&csrf=" + csrf, 403),
    ]
    for method, where, cookie, body, status in asked:
        assert await raw_status(client, method, where, cookie, body) == status, (method, where)
    row = await wait_done(client, action_id)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []


@pytest.mark.parametrize("charset", ["", "; charset=no-such-charset"])
async def test_a_form_part_that_is_not_text_in_its_charset_is_a_400_never_a_500(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    charset: str,
) -> None:
    """A multipart form whose part holds bytes that are not in its charset (or names no charset Python knows):
    the sign-in, the console's forms and the confirmation page refuse it as a 400; nothing is decided."""
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await held(client)
    csrf = await sign_in(client, ALICE)
    session = f"{COOKIE}={session_cookie(client)}".encode()
    path = link(client, "alice", action_id)
    _, page = await open_link(client, path)
    link_csrf = form_csrf(page) or ""
    confirm_cookie = f"{CONFIRM_COOKIE}={link_csrf}".encode()

    def multipart(fields: dict[str, bytes]) -> bytes:
        parts = [
            f'--XX\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain{charset}\r\n\r\n".encode()
            + value
            + b"\r\n"
            for name, value in fields.items()
        ]
        return b"".join(parts) + b"--XX--\r\n"

    bad = b"\xff\xfe\x80"
    asked = [
        ("/ui/login", b"pgwarden_login=x", {"csrf": b"x", "token": bad}),
        (f"/ui/actions/{action_id}/approve", session, {"csrf": csrf.encode(), "x": bad}),
        (path, confirm_cookie, {"csrf": link_csrf.encode(), "decision": b"approve", "x": bad}),
    ]
    for where, cookie, fields in asked:
        status = await raw_status(
            client, "POST", where, cookie, multipart(fields), "multipart/form-data; boundary=XX"
        )
        assert status == 400, (where, status)
    row = await wait_done(client, action_id)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []
