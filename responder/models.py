"""The Alertmanager webhook payload (version 4). Unknown fields are tolerated; wrong types are not. And the
range of an action's id, as a path names one.

`validate_whole(body)` is the fast way for the common payload, small and valid throughout: one pass of
pydantic's own JSON parser from the bytes. Anything else (too large, not valid JSON to that parser, a bad field
anywhere) is validated piece by piece by the caller: the envelope, then each alert on its own, so that one bad
alert fails only itself and says why. The one pass accepts only what the pieces accept (the same fields, the
same strict types; a text that is not UTF-8, such as a lone surrogate escape, is a JSON error to it, and the
pieces then reject just that alert), with the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)

MAX_ACTION_ID = 2**63 - 1  # the journal's BIGINT / SQLite INTEGER
MAX_LABELS = 256
MAX_LABEL_VALUE = 4096


def _timestamp(value: str) -> str:
    """An RFC 3339 timestamp, normalised to UTC, so two Alertmanager peers produce the same key."""
    parsed = _DATETIME.validate_python(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a time zone")
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: a valid RFC 3339 text before year 1 in UTC
        raise ValueError("timestamp out of range in UTC") from None
    return in_utc.isoformat().replace("+00:00", "Z")


def action_id(text: str) -> int | None:
    """The action id a path segment names, or None when it names none the journal can hold (not an integer,
    not positive, beyond its integer range): such an id is simply not found."""
    try:
        number = int(text)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_ACTION_ID else None


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"more than {MAX_LABELS} labels")
    for key, val in value.items():
        if not key or len(val) > MAX_LABEL_VALUE:
            raise ValueError("empty label name or label value too long")
    return value


Timestamp = Annotated[StrictStr, AfterValidator(_timestamp)]
Labels = Annotated[dict[StrictStr, StrictStr], AfterValidator(_labels)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Tolerant):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: dict[StrictStr, StrictStr] = {}
    startsAt: Timestamp
    endsAt: StrictStr | None = None
    generatorURL: StrictStr = ""
    fingerprint: StrictStr = Field(min_length=1, max_length=128)

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @model_validator(mode="after")
    def _has_alertname(self) -> Alert:
        if not self.labels.get("alertname"):
            raise ValueError("alert has no alertname label")
        return self


class WebhookPayload(_Tolerant):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: StrictStr = ""
    groupKey: StrictStr = ""
    truncatedAlerts: StrictInt = Field(default=0, ge=0)
    groupLabels: dict[StrictStr, StrictStr] = {}
    commonLabels: dict[StrictStr, StrictStr] = {}
    commonAnnotations: dict[StrictStr, StrictStr] = {}
    externalURL: StrictStr = ""
    alerts: list[Alert] = Field(max_length=10000)


# Larger bodies are validated piece by piece, with a yield to the event loop every few alerts: one pass over a
# 1 MiB payload would hold the loop for tens of milliseconds.
WHOLE_MAX_BYTES = 16 * 1024


def validate_whole(body: bytes) -> WebhookPayload | None:
    """The payload validated in one pass straight from its bytes, when it is small and valid throughout; else
    None, and the caller validates it piece by piece (see the module's docstring)."""
    if len(body) > WHOLE_MAX_BYTES:
        return None
    try:
        return WebhookPayload.model_validate_json(body)
    except (ValidationError, ValueError, RecursionError):
        return None
