"""Slack, through `slack_sdk`: with a bot token, chat.postMessage then chat.update of the same message as the
decision's outcome changes; with an incoming webhook (which cannot edit), a new message, then a follow-up
message quoting the decision's id at each change.

Slack's answers map onto the outbox's: `ratelimited` is retried after Slack's Retry-After; an answer that will
not change (invalid_auth, channel_not_found, invalid_blocks, a revoked webhook: any 4xx) is permanent; Slack's
own transient errors, a 5xx or no answer at all are retried. The SDK's retries are off (the outbox retries,
with backoff) and its debug log, which would print a webhook's URL, is kept quiet.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from responder.notify.config import Receiver
from responder.notify.content import content
from responder.notify.http import TIMEOUT, Answer, check, retry_after_seconds, unreachable
from responder.notify.model import DeliveryError, Digest, MessageRef, Notice
from responder.notify.slack_blocks import decision_blocks, decision_text, digest_blocks

SERVICE = "slack"
# Never the SDK's own logger: at DEBUG it prints a webhook's URL with each request.
SDK_LOG = logging.getLogger("responder.notify.slack_sdk")
SDK_LOG.setLevel(logging.WARNING)
# Slack's errors worth another try (api.slack.com/methods/chat.postMessage: errors); any other is permanent.
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
# chat.update cannot edit the message any more: a new one is posted instead.
GONE = {"message_not_found", "cant_update_message", "edit_window_closed"}


def _render(
    receiver: Receiver, message: Notice | Digest, follow_up: bool
) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, Digest):
        return digest_blocks(message)
    c = content(message)
    # Buttons need Slack to sign the clicks: without this receiver's signing secret, signed console links.
    buttons = receiver.signing_secret is not None
    return decision_text(c, follow_up), decision_blocks(c, buttons=buttons, follow_up=follow_up)


def _api_error(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {response.status_code}")
    message = f"{SERVICE}: {code}"
    if code == "ratelimited" or response.status_code == 429:
        return DeliveryError(message, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    transient = code in TRANSIENT or response.status_code >= 500 or not data
    return DeliveryError(message, permanent=not transient)


class SlackTransport:
    """A Slack receiver: a bot token and a channel (messages updated in place), or an incoming webhook."""

    kind = "slack"

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None:
        """The message's reference: with a bot token its channel id and ts (the same as `previous` when it
        was updated); with a webhook, which answers no reference, `previous` or an empty one, so that the next
        change is sent as a follow-up."""
        if receiver.token is None:
            return await self._via_webhook(receiver, message, previous)
        return await self._via_api(receiver, receiver.token, message, previous)

    async def _via_api(
        self, receiver: Receiver, token: str, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef:
        text, blocks = _render(receiver, message, follow_up=False)
        client = AsyncWebClient(
            token=token, base_url=receiver.url, timeout=int(TIMEOUT), logger=SDK_LOG, retry_handlers=[]
        )
        try:
            if previous is not None and previous.channel and previous.ts:
                try:
                    await client.chat_update(
                        channel=previous.channel, ts=previous.ts, text=text, blocks=blocks
                    )
                    return previous
                except SlackApiError as exc:
                    if not isinstance(exc.response.data, dict) or exc.response.data.get("error") not in GONE:
                        raise
            posted = await client.chat_postMessage(
                channel=receiver.channel or "",
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
            return MessageRef(str(posted["channel"]), str(posted["ts"]))
        except SlackApiError as exc:
            raise _api_error(exc) from None
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise unreachable(SERVICE, exc) from None

    async def _via_webhook(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef:
        text, blocks = _render(receiver, message, follow_up=previous is not None)
        client = AsyncWebhookClient(receiver.url, timeout=int(TIMEOUT), logger=SDK_LOG, retry_handlers=[])
        try:
            answer = await client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise unreachable(SERVICE, exc) from None
        check(
            SERVICE,
            Answer(answer.status_code, answer.body, answer.headers.get("Retry-After")),
            ok=(200,),
            secrets=(receiver.url,),
        )
        return previous or MessageRef(None, None)


TRANSPORT = SlackTransport()
