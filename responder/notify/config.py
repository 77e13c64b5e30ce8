"""`notify:` in responder.yml: the receivers decisions are sent to, and the routes that choose them.

Stage 1 is the strict schema (`NotifySchema`); stage 2, `resolve_notify`, reads each receiver's secrets (webhook
URLs, tokens, routing keys, signing secrets) into a frozen `NotifySettings`. A secret is never logged: the
resolved values are kept out of every `repr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pgwarden.config import Errors, StrictModel
from pgwarden.secrets import SecretRef
from responder.outcomes import Outcome
from responder.principals import NAME_RE

SLACK_API_URL = "https://slack.com/api/"
PAGERDUTY_CHANGE_URL = "https://events.pagerduty.com/v2/change/enqueue"
HTTP_URL = r"^https?://"
# What a route may name besides `*`: every outcome a decision can end with, and `pending`.
ROUTABLE = tuple(o.value for o in Outcome)


def _one_secret(model: object, key: str, *, required: bool = True) -> None:
    SecretRef.of(model, key).check_one(required=required)


class SlackSchema(StrictModel):
    """Slack: an incoming webhook, or a bot token and a channel (messages then updated in place)."""

    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None
    bot_token_env: str | None = None
    bot_token_file: Path | None = None
    channel: str | None = Field(default=None, min_length=1)
    signing_secret_env: str | None = None  # verifies the Approve/Reject buttons' requests
    signing_secret_file: Path | None = None
    api_url: str = Field(default=SLACK_API_URL, pattern=HTTP_URL)  # the Web API's base URL

    @model_validator(mode="after")
    def _webhook_or_bot(self) -> SlackSchema:
        webhook = SecretRef.of(self, "webhook_url")
        bot = SecretRef.of(self, "bot_token")
        if webhook.given == bot.given:
            raise ValueError(
                "give exactly one of webhook_url_env/webhook_url_file or bot_token_env/bot_token_file"
            )
        _one_secret(self, "webhook_url", required=False)
        _one_secret(self, "bot_token", required=False)
        _one_secret(self, "signing_secret", required=False)
        if bot.given and self.channel is None:
            raise ValueError("a bot token needs a channel")
        return self


class TeamsSchema(StrictModel):
    """Microsoft Teams: a Workflows webhook that posts an Adaptive Card."""

    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None

    @model_validator(mode="after")
    def _one_url(self) -> TeamsSchema:
        _one_secret(self, "webhook_url")
        return self


class PagerDutySchema(StrictModel):
    """PagerDuty: Events API v2 change events for the service of `routing_key`."""

    routing_key_env: str | None = None
    routing_key_file: Path | None = None
    api_url: str = Field(default=PAGERDUTY_CHANGE_URL, pattern=HTTP_URL)

    @model_validator(mode="after")
    def _one_key(self) -> PagerDutySchema:
        _one_secret(self, "routing_key")
        return self


class WebhookSchema(StrictModel):
    """Any HTTP endpoint: the decision as JSON, signed with HMAC-SHA256 when a secret is given."""

    url: str = Field(pattern=HTTP_URL)
    hmac_secret_env: str | None = None
    hmac_secret_file: Path | None = None

    @model_validator(mode="after")
    def _at_most_one_secret(self) -> WebhookSchema:
        _one_secret(self, "hmac_secret", required=False)
        return self


class ReceiverSchema(StrictModel):
    """One named receiver: exactly one of `slack`, `teams`, `pagerduty`, `webhook`."""

    name: str = Field(min_length=1, pattern=NAME_RE)
    slack: SlackSchema | None = None
    teams: TeamsSchema | None = None
    pagerduty: PagerDutySchema | None = None
    webhook: WebhookSchema | None = None
    # At most this many messages a minute; more become one digest ("12 more decisions").
    rate_per_minute: int = Field(default=20, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> ReceiverSchema:
        kinds = [k for k in ("slack", "teams", "pagerduty", "webhook") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of slack, teams, pagerduty or webhook")
        return self


class RouteSchema(StrictModel):
    """Decisions whose outcome and playbook match go to `receiver` (globs; `*` matches all)."""

    receiver: str = Field(min_length=1)
    outcomes: list[str] = Field(default=["*"], min_length=1)
    playbooks: list[str] = Field(default=["*"], min_length=1)

    @field_validator("outcomes")
    @classmethod
    def _known_outcomes(cls, value: list[str]) -> list[str]:
        unknown = [o for o in value if o != "*" and o not in ROUTABLE]
        if unknown:
            raise ValueError(f"unknown outcome {unknown[0]!r}; known: *, {', '.join(ROUTABLE)}")
        return value


class NotifySchema(StrictModel):
    """`notify:`: receivers, routes (a decision goes to every route that matches; none by default), links."""

    receivers: list[ReceiverSchema] = []
    routes: list[RouteSchema] = []
    public_url: str | None = Field(
        default=None, pattern=HTTP_URL
    )  # messages link to {public_url}/ui/actions/{id}

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> NotifySchema:
        names = [r.name for r in self.receivers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"receiver {twice[0]!r} is named more than once")
        for route in self.routes:
            if route.receiver not in names:
                raise ValueError(f"route names receiver {route.receiver!r}, which is not in receivers")
        return self


ReceiverKind = Literal["slack", "teams", "pagerduty", "webhook"]


@dataclass(frozen=True)
class Receiver:
    """A receiver with its secrets read: `url` is where messages go (a webhook URL or an API base URL)."""

    name: str
    kind: ReceiverKind
    url: str = field(repr=False)  # secret for webhooks: never logged
    token: str | None = field(default=None, repr=False)  # Slack bot token or PagerDuty routing key
    channel: str | None = None
    signing_secret: str | None = field(default=None, repr=False)  # Slack's, or the webhook's HMAC key
    rate_per_minute: int = 20

    @property
    def updates_in_place(self) -> bool:
        """Slack with a bot token edits its message (chat.update); others post a follow-up."""
        return self.kind == "slack" and self.token is not None


@dataclass(frozen=True)
class Route:
    receiver: str
    outcomes: tuple[str, ...]
    playbooks: tuple[str, ...]

    def matches(self, outcome: str, playbook: str) -> bool:
        return any(fnmatchcase(outcome, o) for o in self.outcomes) and any(
            fnmatchcase(playbook, p) for p in self.playbooks
        )


@dataclass(frozen=True)
class NotifySettings:
    """The resolved `notify:` section."""

    receivers: tuple[Receiver, ...] = ()
    routes: tuple[Route, ...] = ()
    public_url: str | None = None

    def receivers_for(self, outcome: str, playbook: str) -> tuple[Receiver, ...]:
        """Every receiver a route sends this decision to, each once, in `receivers:` order."""
        wanted = {r.receiver for r in self.routes if r.matches(outcome, playbook)}
        return tuple(r for r in self.receivers if r.name in wanted)

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)

    @property
    def slack_signing_secrets(self) -> tuple[str, ...]:
        """Every Slack receiver's signing secret: a request signed with any of them is Slack's."""
        return tuple(r.signing_secret for r in self.receivers if r.kind == "slack" and r.signing_secret)


def _secret(model: object, key: str, path: str, errors: Errors) -> str | None:
    ref = SecretRef.of(model, key)
    if not ref.given:
        return None
    value = errors.secret(ref, path)
    return value or None


def _receiver(index: int, schema: ReceiverSchema, errors: Errors) -> Receiver | None:
    path = f"notify.receivers.{index}"
    if schema.slack is not None:
        s = schema.slack
        at = f"{path}.slack"
        webhook = _secret(s, "webhook_url", at, errors)
        token = _secret(s, "bot_token", at, errors)
        signing = _secret(s, "signing_secret", at, errors)
        url = webhook if webhook is not None else s.api_url
        return Receiver(schema.name, "slack", url, token, s.channel, signing, schema.rate_per_minute)
    if schema.teams is not None:
        teams_url = _secret(schema.teams, "webhook_url", f"{path}.teams", errors)
        if teams_url is None:
            return None
        return Receiver(schema.name, "teams", teams_url, rate_per_minute=schema.rate_per_minute)
    if schema.pagerduty is not None:
        key = _secret(schema.pagerduty, "routing_key", f"{path}.pagerduty", errors)
        p = schema.pagerduty
        return (
            None
            if key is None
            else Receiver(schema.name, "pagerduty", p.api_url, key, None, None, schema.rate_per_minute)
        )
    assert schema.webhook is not None
    w = schema.webhook
    hmac_key = _secret(w, "hmac_secret", f"{path}.webhook", errors)
    return Receiver(schema.name, "webhook", w.url, None, None, hmac_key, schema.rate_per_minute)


def resolve_notify(schema: NotifySchema, errors: Errors) -> NotifySettings:
    """Stage 2 of `notify:`: every receiver's secrets read; a secret that cannot be had is an error naming its key."""
    receivers = tuple(r for i, s in enumerate(schema.receivers) if (r := _receiver(i, s, errors)) is not None)
    routes = tuple(Route(r.receiver, tuple(r.outcomes), tuple(r.playbooks)) for r in schema.routes)
    public_url = schema.public_url.rstrip("/") if schema.public_url else None
    return NotifySettings(receivers, routes, public_url)
