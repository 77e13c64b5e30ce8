"""What the console tests share: people with their own tokens, and signing in with the test client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

ALICE, VICTOR = "alice-approver-token-0123", "victor-viewer-token-0123"


def people(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """`approvers:` alice (token from the environment) and `viewers:` victor (token from a file)."""
    monkeypatch.setenv("PGW_TEST_ALICE_TOKEN", ALICE)
    (tmp_path / "victor.token").write_text(VICTOR + "\n")
    return {
        "approvers": [{"name": "alice", "token_env": "PGW_TEST_ALICE_TOKEN"}],
        "viewers": [{"name": "victor", "token_file": str(tmp_path / "victor.token")}],
    }


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client: TestClient[web.Request, web.Application], token: str) -> str:
    """Sign in through the form; the session's CSRF token (from the page it lands on)."""
    login = await client.get("/ui/login")
    resp = await client.post("/ui/login", data={"token": token, "csrf": hidden_csrf(await login.text())})
    assert resp.status == 200 and resp.url.path == "/ui", await resp.text()
    return hidden_csrf(await resp.text())
