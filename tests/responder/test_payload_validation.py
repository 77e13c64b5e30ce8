"""The webhook payload's one-pass validation (`responder.models.validate_whole`) against the piece-by-piece one
the handler falls back to: whatever the one pass accepts, the pieces accept too, with equal values; so the
fast way changes nothing a client can see."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.models import WHOLE_MAX_BYTES, Alert, WebhookPayload, validate_whole
from tests.support.webhook import alert, payload

# Texts with what trips a journal or a parser: NUL, lone surrogates, non-ASCII, long runs.
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "\x00", "\ud800", "\udfff", "é", "😀", "firing", "resolved", "4", "2026-11-24T03:00:00Z"]
    ),
    st.sampled_from(
        ["2026-11-24T03:00:00+14:00", "0001-01-01T00:00:00+14:00", "2026-11-24 03:00:00", "1700000000"]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def alerts(draw: st.DrawFn) -> Any:
    fields = alert(fingerprint=draw(st.text(min_size=1, max_size=8)))
    for key in draw(
        st.lists(st.sampled_from([*fields, "labels.alertname", "labels.x", "extra"]), max_size=3)
    ):
        value = draw(json_values)
        if key.startswith("labels."):
            if isinstance(fields.get("labels"), dict):
                fields["labels"][key.split(".", 1)[1]] = value
        elif draw(st.booleans()):
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    data = payload(*draw(st.lists(alerts(), max_size=4)))
    for key in draw(st.lists(st.sampled_from([*data, "extra"]), max_size=2)):
        data[key] = draw(json_values)
    text = json.dumps(data, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # a byte changed somewhere: broken JSON, broken UTF-8, a duplicate key...
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw


def _pieces(body: bytes) -> tuple[WebhookPayload, list[Alert]]:
    """What the handler's piece-by-piece validation makes of an acceptable payload (raises if it would not)."""
    raw = json.loads(body)
    envelope = WebhookPayload.model_validate({**raw, "alerts": []})
    return envelope, [Alert.model_validate(item) for item in raw["alerts"]]


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(bodies())
def test_what_the_one_pass_accepts_the_pieces_accept_alike(body: bytes) -> None:
    whole = validate_whole(body)
    if whole is None:
        return
    envelope, alerts_ = _pieces(body)
    assert whole.alerts == alerts_
    assert whole.model_copy(update={"alerts": []}) == envelope


def test_the_common_payload_takes_the_one_pass() -> None:
    body = json.dumps(payload(alert(), alert(status="resolved"))).encode()
    whole = validate_whole(body)
    assert whole is not None and len(whole.alerts) == 2
    assert validate_whole(json.dumps(payload(alert(), alert(status="sometimes"))).encode()) is None
    assert validate_whole(b'{"alerts": [' + b" " * WHOLE_MAX_BYTES + b"]}") is None  # large: piece by piece


def test_a_lone_surrogate_is_left_to_the_pieces() -> None:
    """The journal cannot hold one; the pieces reject just that alert (tests/responder/test_app.py)."""
    body = json.dumps(payload(alert(x="\ud800"))).encode()
    assert validate_whole(body) is None
    assert _pieces(body)[1][0].labels["x"] == "\ud800"
