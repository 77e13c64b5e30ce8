r"""Structured logging: one event per line, logfmt or JSON, constant messages with key-value context.

Why not structlog (evaluated for issue 20): its stdlib bridge (`ProcessorFormatter` with `ExtraAdder`,
`add_log_level`, `add_logger_name`, `EventRenamer("msg")`, `JSONRenderer`) covers the JSON half, but its
`LogfmtRenderer` does not write our logfmt. It leaves \r, \t, ESC, \x85 and \u2028 unescaped and unquoted
when a value has no space (a forged alertname could end the line: tests/responder/adversarial/
test_small_inputs.py), writes None as `key=` and True as a bare `key` or `key=true`, and dicts as Python reprs.
Keeping this output would take our escaping (`_logfmt_value` and its patterns, ~20 lines) as a custom renderer
anyway, plus processors for the millisecond `ts`, for `error` from exc_info and for the key order, and the
chain's configuration: ~45 lines, as many as the formatter below, for a new dependency and a processor chain
run on every record. So the formatter stays; tests/pgwarden/test_logs.py pins its output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


_NEEDS_QUOTES = re.compile(r'[\s="\\\x00-\x1f\x7f-\x9f\u2028\u2029]')
# What is escaped inside quotes: the quote, the backslash, and every control character and line separator, so
# that a value (an alertname with a \r, say) can never end the line or forge another record.
_ESCAPED = re.compile(r'["\\\x00-\x1f\x7f-\x9f\u2028\u2029]')
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _logfmt_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = "" if value is None else str(value)
    else:
        text = json.dumps(value, default=str)
    if text == "" or _NEEDS_QUOTES.search(text):
        return '"' + _ESCAPED.sub(_escape, text) + '"'
    return text


class StructuredFormatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.json = fmt == "json"
        self._second = -1
        self._stamp = ""

    def _ts(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                fields[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        if self.json:
            return json.dumps(fields, default=str)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("psycopg.pool").setLevel(max(logging.ERROR, root.level))
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("botocore").setLevel(max(logging.WARNING, root.level))
