"""Approvals from Slack's Approve / Reject buttons (`POST /integrations/slack/interactions`).

A request decides only when all of these hold, in this order; the first that fails answers it and nothing is
done:
1. some Slack receiver has a signing secret (else 404: the endpoint is not configured);
2. the body is a form (`application/x-www-form-urlencoded`) of UTF-8 text (else 400);
3. Slack's signature holds (slack_sdk's `SignatureVerifier`: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`
   with one of the signing secrets, compared in constant time) and its timestamp is within five minutes of now
   (else 401: forged, or stale);
4. its `payload` is a `block_actions` press of `pgwarden_approve` or `pgwarden_reject` (else 400);
5. its signature was not taken before, on any replica (the journal keeps them: else 409, a replay);
6. the Slack user is an approver's `slack_user_id` (an unknown user or a viewer: refused);
7. `Dispatcher.decide` under that approver's name, the console's own path: exactly one answer wins, and an
   approval runs in the mode the decision was journaled with (or expires, saying so).
Slack is answered at once (an empty 200 once the request is Slack's, fresh and new); an ephemeral reply to the
presser says what happened, posted afterwards to the request's `response_url` only if that URL is Slack's
(`https://hooks.slack.com`, or the origin of a configured Slack receiver's URL): a request that is not Slack's
never gets that far.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.errors import SlackRequestError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from responder.config import Config
from responder.dispatcher import Dispatcher
from responder.journal import Journal, JournalUnavailable
from responder.models import action_id
from responder.notify.config import NotifySettings
from responder.notify.slack_blocks import APPROVE_ACTION, REJECT_ACTION
from responder.outcomes import Answer
from responder.principals import Principal

log = logging.getLogger("responder")
# slack_sdk's client logs the URL it posts to (at DEBUG and, when its logger's level is DEBUG or unset, INFO): a
# response_url is a credential for 30 minutes, so the client gets a logger of its own that keeps to warnings.
client_log = logging.getLogger("responder.slack_reply")
client_log.setLevel(logging.WARNING)

WINDOW = 300  # seconds: Slack's rule, a request whose timestamp is further from now is refused
# Signatures are kept twice the window: a replica's clock may differ from the journal's by a margin.
KEEP_SIGNATURES = 2 * WINDOW
SLACK_RESPONSE_ORIGIN = "https://hooks.slack.com"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 20
REPLY_TIMEOUT = 5  # seconds for one ephemeral reply
STALE = "stale request: its timestamp is more than 5 minutes from now"


class SlackUser(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[UW][A-Z0-9]{2,20}$")


class SlackAction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action_id: str = Field(max_length=255)
    value: str = Field(default="", max_length=2000)


class BlockActions(BaseModel):
    """The part of Slack's `block_actions` payload read here (Slack sends much more: ignored)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["block_actions"]
    user: SlackUser
    actions: list[SlackAction] = Field(min_length=1, max_length=25)
    response_url: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Press:
    """One press of a pgwarden button: approve or reject `value` (a decision id, if it is one)."""

    approve: bool
    value: str
    decision: int | None
    user_id: str
    response_url: str | None


class Verdict(StrEnum):
    VALID = "valid"
    STALE = "stale"  # signed with a configured secret, but its timestamp is outside the window
    FORGED = "forged"


@dataclass(frozen=True)
class Answered:
    """What to answer Slack (`status`, and a JSON `error` body when refused) and what to tell the presser."""

    status: int
    error: str | None = None
    reply: str | None = None
    response_url: str | None = None


class BadRequest(ValueError):
    """A body that is not a pgwarden button press; its message says why (it never quotes a secret)."""


def check_signature(secrets: tuple[str, ...], body: bytes, timestamp: str, signature: str) -> Verdict:
    """Whether Slack signed `body` with one of `secrets` within the window (slack_sdk's verifier)."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and signature.isascii()):
        return Verdict.FORGED
    authentic = False
    for secret in secrets:
        verifier = SignatureVerifier(secret)
        if verifier.is_valid(body, timestamp, signature):
            return Verdict.VALID
        # Told apart only to say so: an authentic request, too old (or too new) to be taken.
        expected = verifier.generate_signature(timestamp=timestamp, body=body)
        authentic = authentic or (expected is not None and _same(expected, signature))
    return Verdict.STALE if authentic else Verdict.FORGED


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def parse_press(text: str) -> Press:
    """The button press a form body carries; BadRequest saying what is wrong otherwise."""
    try:
        form = parse_qs(text, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        raise BadRequest(f"the body is not a {FORM} form") from exc
    payloads = form.get("payload", [])
    if len(payloads) != 1:
        raise BadRequest("the form needs exactly one payload field")
    try:
        raw = json.loads(payloads[0])
        payload = BlockActions.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"payload: {_reason(exc)}") from exc
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"payload is not JSON: {type(exc).__name__}") from exc
    action = payload.actions[0]
    if action.action_id not in (APPROVE_ACTION, REJECT_ACTION):
        raise BadRequest(f"actions.0.action_id: expected {APPROVE_ACTION} or {REJECT_ACTION}")
    return Press(
        approve=action.action_id == APPROVE_ACTION,
        value=action.value,
        decision=action_id(action.value) if action.value.isascii() and action.value.isdigit() else None,
        user_id=payload.user.id,
        response_url=payload.response_url,
    )


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _origin(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL without credentials; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port or (443 if parts.scheme == 'https' else 80)}"


def reply_origins(notify: NotifySettings) -> frozenset[str]:
    """Where an ephemeral reply may go: Slack's response URLs, and the origin of each configured Slack
    receiver's URL (its webhook or API, which the operator chose: a local Slack in the tests)."""
    urls = [SLACK_RESPONSE_ORIGIN, *(r.url for r in notify.receivers if r.kind == "slack")]
    return frozenset(o for o in map(_origin, urls) if o is not None)


def reply_allowed(response_url: str, origins: frozenset[str]) -> bool:
    """Whether `response_url` is at one of `origins` (anything else is never posted to: no SSRF)."""
    origin = _origin(response_url)
    return origin is not None and origin in origins


class Replies:
    """Ephemeral replies in flight, posted after Slack has had its answer; waited for (briefly) at shutdown."""

    def __init__(self, origins: frozenset[str]) -> None:
        self.origins = origins
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, response_url: str, text: str) -> asyncio.Task[bool]:
        task = asyncio.create_task(send_ephemeral(response_url, text, self.origins), name="slack-reply")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Wait up to REPLY_TIMEOUT for the replies in flight; cancel what is still not sent."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=REPLY_TIMEOUT)
        for task in late:
            task.cancel()


async def send_ephemeral(response_url: str, text: str, origins: frozenset[str]) -> bool:
    """Post `text` to the presser only (`response_type: ephemeral`, the message kept): True if Slack took it.
    A failure is a log line (without the URL, which is a credential for 30 minutes), never an exception."""
    if not reply_allowed(response_url, origins):
        log.warning(
            "slack reply refused: response_url is not Slack's", extra={"origin": _origin(response_url)}
        )
        return False
    client = AsyncWebhookClient(response_url, timeout=REPLY_TIMEOUT, logger=client_log)
    try:
        response = await client.send(response_type="ephemeral", replace_original=False, text=text)
    except (aiohttp.ClientError, TimeoutError, SlackRequestError) as exc:
        log.warning(
            "slack reply failed", extra={"origin": _origin(response_url), "error": type(exc).__name__}
        )
        return False
    if response.status_code != 200:
        log.warning(
            "slack reply refused", extra={"origin": _origin(response_url), "status": response.status_code}
        )
        return False
    return True


class SlackInteractions:
    """From a request's headers and body to what Slack is answered and the presser told (see the module)."""

    def __init__(self, config: Config, journal: Journal, dispatcher: Dispatcher) -> None:
        self.config = config
        self.journal = journal
        self.dispatcher = dispatcher

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Answered:
        secrets = self.config.notify.slack_signing_secrets
        if not secrets:
            return Answered(
                404, "Slack interactions are not configured: no Slack receiver has a signing secret"
            )
        if headers.get("Content-Type", "").partition(";")[0].strip().lower() != FORM:
            return Answered(400, f"the body must be {FORM}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Answered(400, "the body is not UTF-8")
        signature = headers.get("X-Slack-Signature", "")
        verdict = check_signature(secrets, body, headers.get("X-Slack-Request-Timestamp", ""), signature)
        if verdict is Verdict.FORGED:
            log.warning("slack interaction refused", extra={"reason": "bad signature"})
            return Answered(401, "the Slack signature does not verify")
        try:
            press = parse_press(text)
        except BadRequest as exc:
            return Answered(401, STALE) if verdict is Verdict.STALE else Answered(400, str(exc))
        if verdict is Verdict.STALE:
            return self._refused(
                press,
                401,
                STALE,
                "This button press reached pgwarden more than 5 minutes after it was made, so nothing was"
                " done. Press the button again.",
            )
        try:
            first = await self.journal.take_slack_request(signature, KEEP_SIGNATURES)
        except JournalUnavailable:
            return Answered(503, "journal unavailable; retry later")
        if not first:
            return self._refused(
                press,
                409,
                "replayed request",
                "This button press was already received: nothing more was done.",
            )
        return await self._decide(press)

    async def _decide(self, press: Press) -> Answered:
        person = self._person(press.user_id)
        if person is None:
            return self._refused(
                press,
                200,
                "unknown Slack user",
                "Your Slack user is not one of pgwarden's approvers, so nothing was done.",
            )
        if not person.can_approve:
            return self._refused(
                press, 200, "viewer", "You are a viewer of pgwarden: viewers cannot approve or reject."
            )
        if press.decision is None:
            return self._told(press, f"pgwarden has no decision {press.value[:40]!r}: nothing was done.")
        try:
            answer = await self.dispatcher.decide(press.decision, press.approve, person.name)
        except JournalUnavailable:
            return self._told(
                press, "pgwarden's journal is unavailable: nothing was done. Try again shortly.", 503
            )
        log.info(
            "approval",
            extra={"action_id": press.decision, "answer": answer.value, "by": person.name, "via": "slack"},
        )
        try:
            said = await self._said(press.decision, answer)
        except JournalUnavailable:  # decided as `answer` says; only the state it is in now is unknown
            said = f"Decision #{press.decision}: {answer.value.replace('_', ' ')}."
        return self._told(press, said)

    def _person(self, slack_user_id: str) -> Principal | None:
        return next((p for p in self.config.principals if p.slack_user_id == slack_user_id), None)

    async def _said(self, decision: int, answer: Answer) -> str:
        if answer is Answer.APPROVED:
            return f"You approved decision #{decision}: it runs now."
        if answer is Answer.REJECTED:
            return f"You rejected decision #{decision}."
        if answer is Answer.NOT_FOUND:
            return f"pgwarden has no decision #{decision}: nothing was done."
        if answer is Answer.EXPIRED:
            return f"Decision #{decision} has expired (see the message for why): nothing was done."
        if answer is Answer.NOT_PENDING:
            now = await self.journal.get(decision)
            state = "" if now is None else f" (it is {now.state}{f', {now.outcome}' if now.outcome else ''})"
            return f"Decision #{decision} is no longer waiting for an approval{state}: nothing was done."
        if answer is Answer.RECORDED:
            return f"Your approval of decision #{decision} counts; it runs once another approver approves."
        if answer is Answer.ALREADY_APPROVED:
            return f"You have already approved decision #{decision}; it needs another approver's approval."
        return f"Decision #{decision}: {answer.value.replace('_', ' ')}."  # any other answer, as it is named

    def _refused(self, press: Press, status: int, reason: str, reply: str) -> Answered:
        log.warning("slack interaction refused", extra={"reason": reason, "slack_user": press.user_id})
        return Answered(status, None if status == 200 else reason, reply, press.response_url)

    def _told(self, press: Press, reply: str, status: int = 200) -> Answered:
        return Answered(status, None if status == 200 else reply, reply, press.response_url)
