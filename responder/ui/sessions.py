"""Console sign-in: an approver or a viewer trades their own token for a session once.

Sessions live in this process's memory (a restart signs everyone out; with several replicas, sign in to each
or route a browser to one). The cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` when the request came
over TLS; every form carries the session's CSRF token, and the sign-in form a double-submit token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from responder.principals import Principal

COOKIE = "pgwarden_session"
LOGIN_COOKIE = "pgwarden_login"
SESSION_TTL = 8 * 3600.0


@dataclass(frozen=True)
class Session:
    id: str = field(repr=False)
    principal: Principal
    csrf: str = field(repr=False)
    expires: float


class SessionStore:
    def __init__(self, ttl: float = SESSION_TTL) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}

    def create(self, principal: Principal) -> Session:
        now = time.time()
        for sid in [sid for sid, s in self._sessions.items() if s.expires < now]:
            del self._sessions[sid]
        session = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32), now + self.ttl)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is None or session.expires < time.time():
            return None
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: float
) -> None:
    response.set_cookie(
        name, value, max_age=int(max_age), path="/", httponly=True, samesite="Strict", secure=request.secure
    )


def csrf_ok(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())
