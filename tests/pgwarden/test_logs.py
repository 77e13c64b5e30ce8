"""The log line both programs write, logfmt and JSON: what a reader (and a log pipeline's parser) gets for each
kind of value. These are the choices structlog's renderers would have changed (see pgwarden/logs.py)."""

from __future__ import annotations

import json
import logging
import sys

from pgwarden.logs import StructuredFormatter

VALUES = {"ok": True, "none": None, "empty": "", "n": 1.5, "d": {"a": [1, "b c"]}, "s": "a b", "eq": "k=v"}


def _record() -> logging.LogRecord:
    record = logging.LogRecord("responder.actions", logging.WARNING, __file__, 1, "decision", (), None)
    record.created = 1796212800.0456
    record.__dict__.update(VALUES)
    try:
        raise ValueError("bad input")
    except ValueError:
        record.exc_info = sys.exc_info()
    return record


def test_logfmt_line() -> None:
    assert StructuredFormatter("logfmt").format(_record()) == (
        'ts=2026-12-02T12:00:00.045Z level=warning logger=responder.actions msg=decision ok=True none=""'
        ' empty="" n=1.5 d="{\\"a\\": [1, \\"b c\\"]}" s="a b" eq="k=v" error="ValueError: bad input"'
    )


def test_json_line() -> None:
    head = {
        "ts": "2026-12-02T12:00:00.045Z",
        "level": "warning",
        "logger": "responder.actions",
        "msg": "decision",
    }
    line = StructuredFormatter("json").format(_record())
    assert json.loads(line) == {**head, **VALUES, "error": "ValueError: bad input"}
    assert list(json.loads(line)) == [*head, *VALUES, "error"]  # the same order as the logfmt line
