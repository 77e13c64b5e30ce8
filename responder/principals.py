"""Approvers and viewers: people with credentials of their own, never the webhook's token.

An approver may approve and reject pending actions (the journal records the approver's name) and sign in to
the console; a viewer reads the console, `/actions` and `/reports` only.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import Field, model_validator

from pgwarden.config import Errors, StrictModel
from pgwarden.secrets import SecretRef
from responder.core import exactly_one_of

NAME_RE = r"^[A-Za-z0-9_.:@-]+$"


class PrincipalSchema(StrictModel):
    """An approver or a viewer: the name the journal records, and a token of their own."""

    name: str = Field(min_length=1, max_length=100, pattern=NAME_RE)
    token_env: str | None = None
    token_file: Path | None = None
    slack_user_id: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,20}$")  # decides from Slack

    _one_token_source = model_validator(mode="after")(exactly_one_of("token_env", "token_file"))


@dataclass(frozen=True)
class Principal:
    """A person with a credential of their own: `approver` (may decide) or `viewer` (reads only)."""

    name: str
    role: Literal["approver", "viewer"]
    token: str = field(repr=False)  # secret: never logged
    slack_user_id: str | None = None  # the Slack user whose button presses decide as this person

    @property
    def can_approve(self) -> bool:
        return self.role == "approver"


def resolve_principals(
    approvers: list[PrincipalSchema],
    viewers: list[PrincipalSchema],
    webhook_token: str | None,
    errors: Errors,
) -> tuple[Principal, ...]:
    """Approvers and viewers; every token differs from the webhook's and from each other's."""
    sections: tuple[tuple[Literal["approver", "viewer"], str, list[PrincipalSchema]], ...] = (
        ("approver", "approvers", approvers),
        ("viewer", "viewers", viewers),
    )
    names = [p.name for _, _, section in sections for p in section]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.add("approvers", f"{name!r} is named more than once in approvers/viewers")
    slack_ids = [p.slack_user_id for _, _, section in sections for p in section if p.slack_user_id]
    for slack_id in sorted({s for s in slack_ids if slack_ids.count(s) > 1}):
        errors.add("approvers", f"slack_user_id {slack_id!r} is given to more than one person")
    principals: list[Principal] = []
    seen: list[str] = [webhook_token] if webhook_token else []
    for role, section, entries in sections:
        for i, p in enumerate(entries):
            ref = SecretRef("token", env=p.token_env, file=p.token_file)
            token = errors.secret(ref, f"{section}.{i}")
            if token is None:
                continue
            if any(hmac.compare_digest(token.encode(), other.encode()) for other in seen):
                errors.add(
                    f"{section}.{i}.{ref.sources()[0]}", "this token is already in use: give each its own"
                )
                continue
            seen.append(token)
            principals.append(Principal(p.name, role, token, p.slack_user_id))
    return tuple(principals)


def presented_token(request: web.Request) -> str:
    """The bearer token a request presents, or "" (also for bytes that are not UTF-8, which aiohttp keeps as
    surrogates: never anyone's token)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    token = given.strip() if scheme.lower() == "bearer" else ""
    try:
        token.encode()
    except UnicodeEncodeError:
        return ""
    return token
