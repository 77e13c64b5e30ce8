"""What `migrate lint` found, and its three output formats: text (`file:line: level rule: message`), JSON, and
GitHub Actions workflow commands (`::error file=...,line=...::message`), escaped as GitHub's runner parses them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["error", "warning"]
FORMATS = ("text", "json", "github")


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int
    level: Level
    rule: str
    message: str
    source: Literal["squawk", "pgwarden"] = "pgwarden"


def has_errors(findings: Sequence[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


def _one_line(text: str) -> str:
    """A value on one line of the text format: newlines and other control characters shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def escape_data(text: str) -> str:
    """A workflow command's message (GitHub's runner: `%`, CR and LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: the message's escapes plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(findings: Sequence[Finding], notes: Sequence[str], fmt: str) -> str:
    """The report in `fmt` (one of FORMATS), ending with a newline when it is not empty."""
    ordered = sorted(findings, key=lambda f: (f.file, f.line, f.level != "error", f.rule))
    if fmt == "json":
        errors = sum(f.level == "error" for f in ordered)
        document = {
            "findings": [asdict(f) for f in ordered],
            "notes": list(notes),
            "errors": errors,
            "warnings": len(ordered) - errors,
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "github":
        lines = [
            f"::{f.level} file={escape_property(f.file)},line={f.line},"
            f"title={escape_property(f'{f.source} {f.rule}')}::{escape_data(f.message)}"
            for f in ordered
        ]
        lines += [f"::notice::{escape_data(note)}" for note in notes]
    else:
        lines = [f"{_one_line(f.file)}:{f.line}: {f.level} {f.rule}: {_one_line(f.message)}" for f in ordered]
        lines += [f"note: {note}" for note in notes]
    return "".join(line + "\n" for line in lines)
