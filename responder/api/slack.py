"""`POST /integrations/slack/interactions`: Slack's Approve / Reject buttons (responder.approvals.slack decides
what a press does). The body is read within the webhook's limit; Slack is answered at once, and the presser's
ephemeral reply is posted afterwards, in the background."""

from __future__ import annotations

from aiohttp import web

from responder import keys
from responder.approvals.slack import Replies, SlackInteractions, reply_origins

INTERACTIONS_PATH = "/integrations/slack/interactions"


async def interactions(request: web.Request) -> web.Response:
    app = request.app
    config = app[keys.CONFIG]
    limit = config.schema.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return web.json_response({"error": f"body over {limit} bytes"}, status=413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": f"body over {limit} bytes"}, status=413)
    answered = await SlackInteractions(config, app[keys.JOURNAL], app[keys.DISPATCHER]).receive(
        request.headers, body
    )
    if answered.reply is not None and answered.response_url is not None:
        app[keys.SLACK_REPLIES].send(answered.response_url, answered.reply)
    if answered.error is not None:
        return web.json_response({"error": answered.error}, status=answered.status)
    return web.Response(status=answered.status)  # Slack wants an empty 200 for a button press


async def _close_replies(app: web.Application) -> None:
    await app[keys.SLACK_REPLIES].close()


def setup_slack(app: web.Application) -> None:
    """The interactions route, and the ephemeral replies it posts (waited for at shutdown)."""
    app[keys.SLACK_REPLIES] = Replies(reply_origins(app[keys.CONFIG].notify))
    app.on_shutdown.append(_close_replies)
    app.router.add_post(INTERACTIONS_PATH, interactions)
