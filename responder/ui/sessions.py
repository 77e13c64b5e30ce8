"""Console sign-in: an approver or a viewer trades their own token for a session once.

Sessions live in the journal (responder.journal.sessions), so a browser signed in on one replica is signed in on
every replica, and signing out ends the session everywhere. The journal keeps the SHA-256 of a session's id,
never the id (a copy of the journal opens no session), with the principal's name and a fingerprint of the
token they signed in with (an HMAC of it keyed by the session's id): a token removed from, or changed in,
the configuration matches no session any more, and those sessions end. The CSRF token of a session's forms is
derived from its id the same way, so it needs no storage and cannot be guessed from the journal.

The cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` when the request came over TLS; every form carries
the session's CSRF token, and the sign-in form a double-submit token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from responder.journal import Journal
from responder.principals import Principal

COOKIE = "pgwarden_session"
LOGIN_COOKIE = "pgwarden_login"
SESSION_TTL = 8 * 3600.0
MAX_SESSION_ID = 128  # longer than any id this store makes: never looked up


@dataclass(frozen=True)
class Session:
    id: str = field(repr=False)
    principal: Principal
    csrf: str = field(repr=False)
    expires: float


def id_hash(session_id: str) -> str:
    """What the journal keys a session by: never the id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _keyed(session_id: str, what: str) -> str:
    return hmac.new(session_id.encode(), what.encode(), hashlib.sha256).hexdigest()


def token_fingerprint(session_id: str, principal: Principal) -> str:
    """The principal's token as the session remembers it: an HMAC keyed by the session's id."""
    return _keyed(session_id, "token:" + principal.token)


def csrf_token(session_id: str) -> str:
    """The session's CSRF token: derived from its id, so every replica computes the same one."""
    return _keyed(session_id, "csrf")


class SessionStore:
    """The console's sessions, in the journal (`journal()` gives it once the app has opened it), for the
    configured `principals`."""

    def __init__(
        self, journal: Callable[[], Journal], principals: tuple[Principal, ...], ttl: float = SESSION_TTL
    ) -> None:
        self.ttl = ttl
        self._journal = journal
        self._principals = principals

    async def create(self, principal: Principal) -> Session:
        """A new session for `principal` (JournalUnavailable if the journal does not take it)."""
        session_id = secrets.token_urlsafe(32)
        fingerprint = token_fingerprint(session_id, principal)
        expires = await self._journal().create_session(
            id_hash(session_id), principal.name, fingerprint, self.ttl
        )
        return Session(session_id, principal, csrf_token(session_id), expires)

    async def get(self, session_id: str | None) -> Session | None:
        """The session of this id, if it has not expired and its principal's token is still the one it was
        signed in with; JournalUnavailable if the journal does not answer."""
        if not session_id or len(session_id) > MAX_SESSION_ID or not session_id.isascii():
            return (
                None  # never one of ours (a cookie of bytes that are not UTF-8 too: aiohttp keeps surrogates)
            )
        row = await self._journal().session(id_hash(session_id))
        if row is None:
            return None
        principal = next((p for p in self._principals if p.name == row.principal), None)
        if principal is None or not hmac.compare_digest(
            token_fingerprint(session_id, principal), row.token_fingerprint
        ):
            await self._journal().drop_session(id_hash(session_id))  # removed or rotated: ended
            return None
        return Session(session_id, principal, csrf_token(session_id), row.expires_at)

    async def drop(self, session_id: str) -> None:
        """Sign out: the session ends on every replica."""
        await self._journal().drop_session(id_hash(session_id))


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: float
) -> None:
    response.set_cookie(
        name, value, max_age=int(max_age), path="/", httponly=True, samesite="Strict", secure=request.secure
    )


async def posted(request: web.Request) -> Mapping[str, str | bytes | bytearray | web.FileField] | None:
    """The request's form, or None when it cannot be read as one (a multipart part whose bytes are not in its
    charset, an unknown charset): its handler answers 400, never 500."""
    try:
        return await request.post()
    except (ValueError, LookupError):
        return None


def csrf_ok(expected: str, given: object) -> bool:
    """Whether `given` is the CSRF token `expected`; either may come from a cookie, so either may hold bytes
    that are not UTF-8 (kept by aiohttp as surrogates): never a match, never an error."""
    if not isinstance(given, str) or not given or not given.isascii() or not expected.isascii():
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
