"""Passwords out of text a person may see: errors, journaled results, log lines and reports.

`redact` masks the password of libpq conninfo (`password=...`, quoted or not), of URLs
(`postgresql://user:pass@host` -> `postgresql://user:***@host`), of environment assignments
(`PGPASSWORD=...`) and of JSON or Python mappings (`"password": "..."`), and the token libpq quotes when a URI
does not parse. `redact_url` is for a URL shown as is (a report's source); `redact_data` walks a JSON-like value.
"""

from __future__ import annotations

import re
from typing import Any, overload
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# A key that names a secret value: password, sslpassword, PGPASSWORD, db_passwd, MasterUserPassword, and AWS's
# SecretString, SecretBinary and ...Token fields.
_KEY = r"[A-Za-z_]*(?:pass(?:word|wd)|secret(?:string|binary)|token)"
# `key=value` in conninfo, URL queries and environment assignments. A quoted value runs to its closing quote
# (libpq's backslash escapes included); an unquoted one to whitespace or the next query parameter.
_ASSIGNMENT = re.compile(
    rf"""(?i)\b(?P<key>{_KEY})(?P<eq>\s*=\s*)(?:'(?:\\.|[^'\\])*'?|"(?:\\.|[^"\\])*"?|[^\s&]+)"""
)
# `"password": "value"` (JSON) and `'password': 'value'` (a Python repr).
_MAPPING = re.compile(
    rf"""(?i)(?P<head>(?P<q>["'])(?P<key>{_KEY})(?P=q)\s*:\s*)(?P<v>["'])(?:\\.|(?!(?P=v)).)*(?P=v)?"""
)
# `scheme://user:password@`: the userinfo runs to the last `@` before whitespace or a quote, so a password
# holding an unencoded `@` is masked whole.
_USERINFO = re.compile(r"""(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>]*):[^\s"'<>]*@""")
# libpq quotes the offending token when a URI does not parse; it may be the password itself.
_LIBPQ_TOKEN = re.compile(r'(?P<head>percent-encoded (?:token|value): )"[^"]*"')


@overload
def redact(text: str) -> str: ...
@overload
def redact(text: None) -> None: ...
def redact(text: str | None) -> str | None:
    """`text` with every password it holds replaced by `***` (None stays None)."""
    if text is None:
        return None
    text = _MAPPING.sub(lambda m: f"{m['head']}{m['v']}{MASK}{m['v']}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _LIBPQ_TOKEN.sub(lambda m: f'{m["head"]}"{MASK}"', text)


def redact_url(url: str) -> str:
    """A URL for display: `user:***@host`, and any password query parameter masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}")
    return redact(urlunsplit(parts))


def redact_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with passwords masked: in every string, and the whole value
    of a key that names a password."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and re.fullmatch(_KEY, k, re.I) else redact_data(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value
