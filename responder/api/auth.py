"""Who may call what: the bearer checks of the HTTP API, each applied to its handlers by one decorator.

    @bearer(webhook_token)      the webhook's token (or `auth: none`): /webhook, /schedules
    @bearer(any_token)          ... or an approver's or a viewer's: /actions
    @bearer(approver_token)     an approver's own, never the webhook's: approve and reject

A refused request is answered with the check's status and `{"error": ...}`, and never reaches the handler.
`bearer_passes_web_auth` says where a bearer token stands in for `--web.config.file`'s basic auth.
"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import Awaitable, Callable

from aiohttp import web

from responder import keys
from responder.principals import presented_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refusal = tuple[int, str]
# A check: None lets the request through; a refusal is its status and error text. A check may be async (one
# that reads the journal: the console's sessions).
Check = Callable[[web.Request], Refusal | Awaitable[Refusal | None] | None]

NO_TOKEN: Refusal = (401, "missing or wrong bearer token")
# The token API, where a person's own bearer token is the credential: with `--web.config.file` basic auth, such a
# token is not also asked for basic-auth credentials here (an Authorization header carries one or the other).
PERSONAL_TOKEN_ROUTES = frozenset(
    {"/actions", "/actions/{id}/approve", "/actions/{id}/reject", "/reports", "/reports/{id}"}
)
# Routes whose requests carry their sender's own signature, checked by the handler (Slack's: it cannot send
# basic-auth credentials): `--web.config.file`'s basic auth does not apply to them.
SIGNED_ROUTES = frozenset({"/integrations/slack/interactions"})


def bearer(check: Check) -> Callable[[Handler], Handler]:
    """The handler, run only for the requests `check` lets through."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            refusal = check(request)
            if inspect.isawaitable(refusal):
                refusal = await refusal
            if refusal is not None:
                status, error = refusal
                return web.json_response({"error": error}, status=status)
            return await handler(request)

        return checked

    return decorate


def _is_webhook_token(request: web.Request) -> bool:
    token = request.app[keys.CONFIG].token
    if token is None:
        return True
    return hmac.compare_digest(presented_token(request).encode(), token.encode())


def webhook_token(request: web.Request) -> Refusal | None:
    """The webhook's token (or `auth: none`)."""
    return None if _is_webhook_token(request) else NO_TOKEN


def any_token(request: web.Request) -> Refusal | None:
    """The webhook's token (or `auth: none`), or an approver's or a viewer's."""
    if _is_webhook_token(request) or request.app[keys.CONFIG].principal(presented_token(request)) is not None:
        return None
    return NO_TOKEN


def approver_token(request: web.Request) -> Refusal | None:
    """An approver's own token: the webhook's token (which every Alertmanager holds) never decides, nor does a
    viewer's."""
    config = request.app[keys.CONFIG]
    person = config.principal(presented_token(request))
    if person is None:
        if config.token is not None and _is_webhook_token(request):
            return 403, "the webhook token cannot approve; use an approver's token"
        return 401, "missing or wrong approver token"
    if not person.can_approve:
        return 403, f"{person.name} is a viewer and cannot approve"
    return None


def bearer_passes_web_auth(request: web.Request) -> bool:
    """Whether the request's bearer token stands in for `--web.config.file`'s basic auth: the webhook's token on
    any endpoint, an approver's or a viewer's on the token API (PERSONAL_TOKEN_ROUTES), whose handlers then
    check what that person may do; and every request on SIGNED_ROUTES, whose handlers check its signature.
    /metrics, /healthz and the console keep basic auth for everyone else (see "Who checks what" in
    docs/responder.md)."""
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical in SIGNED_ROUTES:
        return True
    config = request.app[keys.CONFIG]
    given = presented_token(request)
    if not given:
        return False
    if config.token is not None and hmac.compare_digest(given.encode(), config.token.encode()):
        return True
    return (
        resource is not None
        and resource.canonical in PERSONAL_TOKEN_ROUTES
        and config.principal(given) is not None
    )
