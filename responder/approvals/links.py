"""Approval links: a signed, short-lived link per approver to the console's confirmation page.

A link is signed with its approver's own token (itsdangerous, HMAC-SHA256, timestamped), so it needs no key
of its own, holds on whichever replica opens it, and dies when that token is removed from the configuration.
The approver's name travels beside the signature so the right key can be chosen; changing it breaks the
signature. Each link carries a random nonce: the confirmation page spends it once (responder.approvals).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from responder.principals import Principal

SALT = "pgwarden-approval-link"
LINK_TTL = 3600  # seconds; never longer than the decision's approval timeout
CONFIRM_PATH = "/ui/confirm/"


class LinkError(ValueError):
    """A link that decides nothing: forged, expired, for nobody configured, or not an approver's."""


@dataclass(frozen=True)
class LinkClaim:
    """What a valid link says: this approver may decide this decision, once (`nonce`)."""

    action_id: int
    approver: str
    nonce: str


def _serializer(principal: Principal) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(principal.token, salt=SALT)


def sign_link(principal: Principal, action_id: int) -> str:
    """The opaque link token for `principal` to decide `action_id` (URL-safe)."""
    if not principal.can_approve:
        raise LinkError(f"{principal.name} is not an approver")
    payload = {"a": action_id, "u": principal.name, "n": secrets.token_urlsafe(16)}
    signed = _serializer(principal).dumps(payload)
    return signed if isinstance(signed, str) else signed.decode()


def approval_url(public_url: str, principal: Principal, action_id: int) -> str:
    """`{public_url}/ui/confirm/{token}`: the link a message gives `principal`."""
    return public_url.rstrip("/") + CONFIRM_PATH + sign_link(principal, action_id)


def verify_link(token: str, principals: tuple[Principal, ...], max_age: int = LINK_TTL) -> LinkClaim:
    """The claim of a link signed by a configured approver within `max_age` seconds; LinkError otherwise."""
    try:
        _, unverified = URLSafeTimedSerializer("", salt=SALT).loads_unsafe(token)
    except BadData as exc:  # not even shaped like a link
        raise LinkError("not an approval link") from exc
    name = unverified.get("u") if isinstance(unverified, dict) else None
    principal = next((p for p in principals if p.name == name), None)
    if principal is None or not principal.can_approve:
        raise LinkError("not an approval link")
    try:
        payload: Any = _serializer(principal).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("this link has expired") from exc
    except BadData as exc:
        raise LinkError("not an approval link") from exc
    action_id, nonce = payload.get("a"), payload.get("n")
    if not isinstance(action_id, int) or not isinstance(nonce, str) or payload.get("u") != principal.name:
        raise LinkError("not an approval link")
    return LinkClaim(action_id, principal.name, nonce)
