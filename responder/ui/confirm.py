"""The confirmation page of an approval link (responder.approvals.links): `GET /ui/confirm/{token}` shows the
decision to the approver the link names, `POST` decides it under their name through `Dispatcher.decide`.

No session is needed: the link is the credential (signed with the approver's own token, short-lived), and it
decides once (its nonce is spent in the journal by what it decides, on whichever replica). A GET never decides
(link previewers and unfurlers fetch GETs). The form carries a CSRF token bound to the link (an HMAC of it
keyed by the approver's token), also set as a `SameSite=Strict` cookie on the link's path: a post from another site carries no
such cookie. A link that is forged, altered, expired, for someone no longer an approver, or for a decision
that is gone answers a page that says so (400, 404 or 410), never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from responder import keys
from responder.approvals.links import LINK_TTL, LinkClaim, LinkError, verify_link
from responder.journal import ActionRow, JournalUnavailable
from responder.outcomes import Answer, State
from responder.principals import Principal
from responder.ui.sessions import csrf_ok, posted
from responder.ui.timeline import entry

log = logging.getLogger("responder")

CONFIRM_COOKIE = "pgwarden_confirm"
MAX_TOKEN = 2048  # far longer than any link this responder signs
SAYS = {
    Answer.APPROVED: "Approved: the action runs now.",
    Answer.REJECTED: "Rejected: the action will not run.",
    Answer.RECORDED: "Your approval is recorded; another approver's approval is needed before it runs.",
    Answer.ALREADY_APPROVED: "You have approved this already; an approval counts once per approver.",
    Answer.LINK_USED: "This link has been used already: it decides once. Nothing was done.",
    Answer.NOT_PENDING: "This decision is no longer waiting for an approval. Nothing was done.",
    Answer.EXPIRED: "The approval window of this decision has passed. Nothing was done.",
    Answer.NOT_FOUND: "There is no such decision (any more).",
}
STATUS = {
    Answer.APPROVED: 200,
    Answer.REJECTED: 200,
    Answer.RECORDED: 200,
    Answer.ALREADY_APPROVED: 409,
    Answer.LINK_USED: 409,
    Answer.NOT_PENDING: 409,
    Answer.EXPIRED: 410,
    Answer.NOT_FOUND: 404,
}


def link_csrf(principal: Principal, token: str) -> str:
    """The CSRF token of one link's form: bound to the link, unknowable without its approver's token."""
    return hmac.new(principal.token.encode(), b"confirm-csrf:" + token.encode(), hashlib.sha256).hexdigest()


def _refused(request: web.Request, status: int, message: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "confirm.html", request, {"message": message, "row": None, "e": None, "form": None}, status=status
    )


def _claim(request: web.Request) -> tuple[LinkClaim, Principal] | web.Response:
    """The link's claim and its approver, or the page refusing it."""
    token = request.match_info["token"]
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return _refused(request, 400, "This is not an approval link.")
    config = request.app[keys.CONFIG]
    max_age = int(min(LINK_TTL, config.schema.approval_timeout))  # never beyond the approval window
    try:
        claim = verify_link(token, config.principals, max_age=max_age)
    except LinkError as exc:
        expired = "expired" in str(exc)
        return _refused(
            request, 410 if expired else 404, "This link has expired." if expired else "Not an approval link."
        )
    principal = next(p for p in config.principals if p.name == claim.approver)
    return claim, principal


def _shown(request: web.Request, row: ActionRow) -> dict[str, Any]:
    shown = row.to_json()
    console = request.app[keys.CONFIG].schema.console
    now = request.app[keys.CLOCK]()
    return {"row": shown, "e": entry(shown, now, console.alertmanager_url, console.grafana_url)}


def _needed(request: web.Request, row: ActionRow) -> int:
    playbook = request.app[keys.CONFIG].playbook(row.playbook)
    return playbook.approvals if playbook is not None else 1


async def show(request: web.Request) -> web.StreamResponse:
    """The decision the link is for, and (while it is pending and the link unspent) its two buttons."""
    found = _claim(request)
    if isinstance(found, web.Response):
        return found
    claim, principal = found
    journal = request.app[keys.JOURNAL]
    try:
        row = await journal.get(claim.action_id)
        spent = await journal.link_spent(claim.nonce)
    except JournalUnavailable:
        return _refused(request, 503, "The journal is unavailable; retry in a moment.")
    if row is None:
        return _refused(request, 404, SAYS[Answer.NOT_FOUND])
    message, form = None, None
    if spent:
        message = SAYS[Answer.LINK_USED]
    elif row.state is not State.PENDING:
        message = "This decision is no longer waiting for an approval; it is shown as it is now."
    elif any(a.by == principal.name for a in row.approvals):
        message = SAYS[Answer.ALREADY_APPROVED]
    else:
        form = link_csrf(principal, request.match_info["token"])
    context = {"message": message, "form": form, "approver": principal.name, "needed": _needed(request, row)}
    response = aiohttp_jinja2.render_template("confirm.html", request, context | _shown(request, row))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is a credential: never sent onwards
    if form is not None:  # scoped to this link's path: two links open in one browser do not clash
        response.set_cookie(
            CONFIRM_COOKIE, form, max_age=LINK_TTL, path=request.path, httponly=True, samesite="Strict",
            secure=request.secure,
        )  # fmt: skip
    return response


async def decide(request: web.Request) -> web.StreamResponse:
    """Approve or reject under the link's approver's name, once: the link's nonce is spent by what decides."""
    found = _claim(request)
    if isinstance(found, web.Response):
        return found
    claim, principal = found
    data = await posted(request)
    if data is None:
        return _refused(request, 400, "This is not a form this page sends.")
    expected = link_csrf(principal, request.match_info["token"])
    if not csrf_ok(expected, data.get("csrf")) or not csrf_ok(expected, request.cookies.get(CONFIRM_COOKIE)):
        return _refused(request, 403, "Missing or wrong CSRF token: open the link again and use its buttons.")
    verb = data.get("decision")
    if verb not in ("approve", "reject"):
        return _refused(request, 400, "Choose approve or reject.")
    try:
        answer = await request.app[keys.DISPATCHER].decide(
            claim.action_id, verb == "approve", principal.name, nonce=claim.nonce
        )
    except JournalUnavailable:
        return _refused(request, 503, "The journal is unavailable; nothing was decided. Retry in a moment.")
    log.info(
        "approval",
        extra={"action_id": claim.action_id, "answer": answer.value, "by": principal.name, "via": "link"},
    )
    try:
        row = await request.app[keys.JOURNAL].get(claim.action_id)
    except JournalUnavailable:  # decided as `answer` says: only the decision as it is now cannot be shown
        return _refused(request, STATUS[answer], SAYS[answer])
    if row is None:
        return _refused(request, 404, SAYS[Answer.NOT_FOUND])
    context = {"message": SAYS[answer], "form": None, "approver": principal.name, "answer": answer.value}
    response = aiohttp_jinja2.render_template(
        "confirm.html", request, context | {"needed": _needed(request, row)} | _shown(request, row),
        status=STATUS[answer],
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    response.del_cookie(CONFIRM_COOKIE, path=request.path)
    return response
