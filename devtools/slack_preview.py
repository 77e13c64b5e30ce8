"""Slack messages as an HTML page, roughly as Slack draws them: the Block Kit pgwarden sends (header, section
text and fields, buttons, context) with mrkdwn's bold, italics, code and `<url|label>` links. The local Slack
(tests/support/chat_receivers.py) serves its channel this way at `/preview`, for the docs' screenshot
(devtools/chat_shots.py).

mrkdwn arrives escaped (`&amp;`, `&lt;`, `&gt;`) and is HTML-safe as it is, once its own links are made anchors
and any other `<` or `>` is escaped; plain_text is escaped here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
FORMATS = [
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), r"<i>\1</i>"),
]
EMOJI = {":test_tube:": "🧪"}
STYLE = """
body { font: 15px/1.45 -apple-system, "Segoe UI", "Noto Sans", "DejaVu Sans", sans-serif; color: #1d1c1d;
       background: #fff; margin: 0; padding: 16px 24px; width: 760px; }
.channel { font-weight: 700; font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 8px; }
.caption { color: #616061; font-size: 13px; margin: 18px 0 4px 52px; font-style: italic; }
.message { display: flex; gap: 12px; padding: 8px 0; }
.avatar { width: 40px; height: 40px; border-radius: 6px; background: #336791; color: #fff; font-weight: 700;
          display: flex; align-items: center; justify-content: center; flex: none; }
.who b { margin-right: 6px; } .app { background: #e8e8e8; color: #616061; font-size: 10px; font-weight: 700;
       padding: 1px 4px; border-radius: 3px; margin-right: 6px; } .time { color: #616061; font-size: 12px; }
.header { font-weight: 900; font-size: 18px; margin: 4px 0; }
.section { margin: 6px 0; white-space: normal; word-wrap: break-word; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 24px; margin: 6px 0; }
.actions { margin: 8px 0; display: flex; gap: 8px; }
.button { border: 1px solid #bbb; border-radius: 4px; padding: 4px 14px; font-weight: 700; font-size: 14px; }
.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.danger { color: #e01e5a; border-color: #e01e5a; }
.context { color: #616061; font-size: 12px; margin: 6px 0; } .context span + span::before { content: " | "; }
code { background: #f4f4f4; border: 1px solid #e2e2e2; border-radius: 3px; color: #e01e5a; padding: 0 3px;
       font-size: 13px; }
a { color: #1264a3; text-decoration: none; }
"""


def mrkdwn(text: str) -> str:
    """mrkdwn (already escaped) as HTML."""
    out = []
    for i, part in enumerate(LINK.split(text)):
        kind = i % 3  # LINK.split gives text, url, label, text, ...
        if kind == 0:
            part = part.replace("<", "&lt;").replace(">", "&gt;")
            for pattern, replacement in FORMATS:
                part = pattern.sub(replacement, part)
            for code, emoji in EMOJI.items():
                part = part.replace(code, emoji)
            out.append(part.replace("\n", "<br>"))
        elif kind == 1:
            out.append(f'<a href="{html.escape(html.unescape(part))}">')
        else:
            out.append(f"{part}</a>")
    return "".join(out)


def _text(obj: dict[str, Any]) -> str:
    return mrkdwn(obj["text"]) if obj.get("type") == "mrkdwn" else html.escape(obj["text"])


def block(b: dict[str, Any]) -> str:
    """One block as HTML (the types pgwarden sends; any other as a note)."""
    kind = b.get("type")
    if kind == "header":
        return f'<div class="header">{_text(b["text"])}</div>'
    if kind == "section":
        text = f'<div class="section">{_text(b["text"])}</div>' if "text" in b else ""
        fields = "".join(f"<div>{_text(f)}</div>" for f in b.get("fields", []))
        return text + (f'<div class="fields">{fields}</div>' if fields else "")
    if kind == "actions":
        buttons = "".join(
            f'<span class="button {html.escape(e.get("style", ""))}">{_text(e["text"])}</span>'
            for e in b["elements"]
        )
        return f'<div class="actions">{buttons}</div>'
    if kind == "context":
        return '<div class="context">' + "".join(f"<span>{_text(e)}</span>" for e in b["elements"]) + "</div>"
    return f'<div class="section"><i>({html.escape(str(kind))} block)</i></div>'


def message(blocks: list[dict[str, Any]], at: str, caption: str | None = None) -> str:
    said = f'<div class="caption">{html.escape(caption)}</div>' if caption else ""
    body = "".join(block(b) for b in blocks)
    return (
        f'{said}<div class="message"><div class="avatar">pg</div><div><div class="who"><b>pgwarden</b>'
        f'<span class="app">APP</span><span class="time">{html.escape(at)}</span></div>{body}</div></div>'
    )


def page(channel: str, messages: Iterable[tuple[list[dict[str, Any]], str, str | None]]) -> str:
    """A channel's messages (blocks, time shown, a caption above) as one HTML page."""
    shown = "".join(message(blocks, at, caption) for blocks, at, caption in messages)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{STYLE}</style></head>'
        f'<body><div class="channel">{html.escape(channel)}</div>{shown}</body></html>'
    )
