"""Console sessions in the journal: a sign-in on one replica works on another (two apps on one PostgreSQL
journal), signing out ends it everywhere, the journal holds a hash of the id (never the id), a token removed
from or changed in the configuration ends that person's sessions, expired sessions are purged, and a journal
that does not answer is a 503, not a 500."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from responder import keys
from responder.ui.sessions import COOKIE
from tests.responder.ui.console import ALICE, hidden_csrf, people, sign_in
from tests.support.journal import journal_sql
from tests.support.responder import ClientFactory, ConfigFactory


async def test_a_sign_in_on_one_replica_works_on_the_other_and_signing_out_ends_it_everywhere(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
) -> None:
    config = make_config(journal=pg_journal, **people(monkeypatch, tmp_path))
    a, b = await client_for(config), await client_for(config)
    await sign_in(a, ALICE)
    cookie = a.session.cookie_jar.filter_cookies(a.make_url("/ui"))[COOKIE].value
    b.session.cookie_jar.update_cookies({COOKIE: cookie})  # the load balancer picks the other replica
    page = await b.get("/ui", allow_redirects=False)
    assert page.status == 200 and 'id="who">alice<' in await page.text()
    csrf = hidden_csrf(await page.text())
    assert csrf == hidden_csrf(await (await a.get("/ui")).text())  # one CSRF token on every replica
    assert (await b.post("/ui/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    a.session.cookie_jar.update_cookies({COOKIE: cookie})
    resp = await a.get("/ui", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    assert journal_sql(pg_journal, "SELECT count(*) FROM pgwarden_sessions")[0][0] == 0


async def test_the_journal_keeps_a_hash_of_the_session_id_never_the_id(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    csrf = await sign_in(client, ALICE)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/ui"))[COOKIE].value
    rows = journal_sql(
        journal_url,
        "SELECT id_hash, principal, token_fingerprint, created_at, expires_at FROM pgwarden_sessions",
    )
    ((id_hash, principal, fingerprint, created, expires),) = rows
    assert id_hash == hashlib.sha256(cookie.encode()).hexdigest() and principal == "alice"
    assert abs(float(expires) - float(created) - 8 * 3600) < 1
    stored = " ".join(str(v) for row in rows for v in row)
    for secret in (cookie, ALICE, csrf):
        assert secret not in stored
    assert fingerprint != hashlib.sha256(ALICE.encode()).hexdigest()  # keyed by the session: not a plain hash


@pytest.mark.parametrize("change", ["rotated", "removed"])
async def test_a_token_changed_or_removed_in_the_config_ends_that_persons_sessions(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
    change: str,
) -> None:
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(journal=pg_journal, **before))
    await sign_in(old, ALICE)
    cookie = old.session.cookie_jar.filter_cookies(old.make_url("/ui"))[COOKIE].value
    if change == "rotated":
        monkeypatch.setenv("PGW_TEST_ALICE_TOKEN", "alice-new-token-456789012")
        after = make_config(journal=pg_journal, **before)
    else:
        after = make_config(journal=pg_journal, **{**before, "approvers": []})
    new = await client_for(after)  # a replica started with the new configuration
    new.session.cookie_jar.update_cookies({COOKIE: cookie})
    resp = await new.get("/ui", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    assert journal_sql(pg_journal, "SELECT count(*) FROM pgwarden_sessions")[0][0] == 0  # ended for all


async def test_expired_sessions_are_purged_in_housekeeping(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    await sign_in(client, ALICE)
    journal = client.app[keys.JOURNAL]
    await journal.create_session("0" * 64, "alice", "f" * 64, -1.0)  # expired already
    sql = "SELECT id_hash FROM pgwarden_sessions ORDER BY id_hash"
    assert len(journal_sql(journal_url, sql)) == 2
    assert await journal.session("0" * 64) is None  # an expired session opens nothing, purged or not
    await journal.prune(90 * 86400.0)  # what housekeeping runs once a minute
    ((kept,),) = journal_sql(journal_url, sql)
    assert kept != "0" * 64
    assert (await client.get("/ui", allow_redirects=False)).status == 200


async def test_a_journal_that_does_not_answer_is_a_503_not_a_500(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    csrf = await sign_in(client, ALICE)
    login = hidden_csrf(await (await client.get("/ui/login")).text())
    await client.app[keys.JOURNAL].close()  # the journal is gone
    for resp in (
        await client.get("/ui", allow_redirects=False),
        await client.get("/ui/approvals", allow_redirects=False),
        await client.post("/ui/logout", data={"csrf": csrf}, allow_redirects=False),
        await client.post("/ui/login", data={"token": ALICE, "csrf": login}, allow_redirects=False),
        await client.get("/reports", allow_redirects=False),
    ):
        assert resp.status == 503, (resp.url, await resp.text())
        assert "journal unavailable" in await resp.text()
