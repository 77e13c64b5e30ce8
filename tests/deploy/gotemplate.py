"""The part of Go's text/template (and Helm's functions) the postgres_exporter chart's container templates use.

Enough to render the copies in tests/fixtures/postgres_exporter/helm as `helm template` renders them: actions
with whitespace trimming (`{{-`, `-}}`), comments, `if`/`else`/`end`, `define`, field chains of `.` and `$`,
string and number literals, parenthesised pipelines, `|`, and the functions `tpl`, `toYaml`, `nindent`, `int`,
`default`, `printf`, `trimSuffix`, `quote` and `template`. Anything else is an error, never a silent guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|\||\$?[.][A-Za-z0-9_.]*|\$|[A-Za-z_][A-Za-z0-9_]*|-?\d+)')


class TemplateError(Exception):
    """A construct this renderer does not know, or a template that does not parse."""


@dataclass
class Node:
    kind: str  # text, action, if, define
    text: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def parse(source: str) -> list[Node]:
    """The template as a tree, whitespace trimmed as Go trims it."""
    pieces: list[tuple[str, str]] = []  # (kind, text): text, or action
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if match.group(1):
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim-next":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text))
        action = match.group(2).strip()
        if not action.startswith("/*"):
            pieces.append(("action", action))
        if match.group(3):
            pieces.append(("trim-next", ""))
        pos = match.end()
    tail = source[pos:]
    if pieces and pieces[-1][0] == "trim-next":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))
    nodes, rest = _block(pieces, 0)
    if rest != len(pieces):
        raise TemplateError(f"unexpected {pieces[rest][1]!r}")
    return nodes


def _block(pieces: list[tuple[str, str]], i: int) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while i < len(pieces):
        kind, text = pieces[i]
        if kind == "text":
            nodes.append(Node("text", text))
        elif text in ("end", "else"):
            return nodes, i
        elif text.startswith(("if ", "define ")):
            body, i = _block(pieces, i + 1)
            orelse: list[Node] = []
            if pieces[i][1] == "else":
                orelse, i = _block(pieces, i + 1)
            if pieces[i][1] != "end":
                raise TemplateError(f"{text!r} has no end")
            nodes.append(Node(text.split(" ", 1)[0], text.split(" ", 1)[1], body, orelse))
        else:
            nodes.append(Node("action", text))
        i += 1
    return nodes, i


class Renderer:
    """Renders parsed templates against `values` (the chart's .Values); `defines` are named templates."""

    def __init__(self, values: dict[str, Any], *sources: str) -> None:
        self.root = {"Values": values}
        self.defines: dict[str, list[Node]] = {}
        for source in sources:
            for node in parse(source):
                if node.kind == "define":
                    self.defines[json.loads(node.text)] = node.body

    def render(self, source: str, dot: Any = None) -> str:
        return self._nodes(parse(source), self.root if dot is None else dot)

    def _nodes(self, nodes: list[Node], dot: Any) -> str:
        out = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                out.append(_show(self._pipeline(node.text, dot)))
            elif node.kind == "if":
                out.append(
                    self._nodes(node.body if _truthy(self._pipeline(node.text, dot)) else node.orelse, dot)
                )
            elif node.kind != "define":
                raise TemplateError(f"unknown node {node.kind}")
        return "".join(out)

    def _pipeline(self, text: str, dot: Any) -> Any:
        tokens = [t for t in _TOKEN.findall(text)]
        if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
            raise TemplateError(f"cannot read {text!r}")
        value, rest = self._commands(tokens, 0, dot)
        if rest != len(tokens):
            raise TemplateError(f"cannot read {text!r}")
        return value

    def _commands(self, tokens: list[str], i: int, dot: Any) -> tuple[Any, int]:
        value: Any = None
        piped = False
        while i < len(tokens) and tokens[i] != ")":
            args: list[Any] = []
            name = None
            while i < len(tokens) and tokens[i] not in ("|", ")"):
                token = tokens[i]
                if token == "(":
                    sub, i = self._commands(tokens, i + 1, dot)
                    args.append(sub)
                elif token in _FUNCTIONS and name is None and not args:
                    name = token
                else:
                    args.append(self._operand(token, dot))
                i += 1
            if piped:
                args.append(value)
            value = self._call(name, args) if name else _single(args)
            piped = True
            if i < len(tokens) and tokens[i] == "|":
                i += 1
        return value, i

    def _operand(self, token: str, dot: Any) -> Any:
        if token.startswith('"'):
            return json.loads(token)
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        base = self.root if token.startswith("$") else dot
        path = token.lstrip("$").strip(".")
        for part in path.split(".") if path else []:
            base = base.get(part) if isinstance(base, dict) else None
        return base

    def _call(self, name: str, args: list[Any]) -> Any:
        if name == "template":
            return self._nodes(self.defines[args[0]], args[1])
        if name == "tpl":
            return self.render(str(args[0]), args[1])
        return _FUNCTIONS[name](*args)


def _single(args: list[Any]) -> Any:
    if len(args) != 1:
        raise TemplateError(f"a value, not {args!r}")
    return args[0]


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, list | dict) and not value)


def _show(value: Any) -> str:
    if value is None:
        return ""  # Helm renders a missing value as empty (with --missing=zero's default)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)
    return re.sub(r"%[sd]", lambda _: str(next(values)), fmt)


def _nindent(width: int, text: str) -> str:
    return "\n" + "\n".join(" " * width + line if line else line for line in text.split("\n"))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toYaml": lambda value: yaml.safe_dump(value, default_flow_style=False).rstrip("\n"),
    "nindent": _nindent,
    "int": lambda value: int(value or 0),
    "default": lambda fallback, value=None: value if _truthy(value) else fallback,
    "printf": _printf,
    "trimSuffix": lambda suffix, text: text[: -len(suffix)] if suffix and text.endswith(suffix) else text,
    "quote": lambda value: json.dumps(_show(value)),
    "template": lambda *args: None,  # handled by Renderer._call
    "tpl": lambda *args: None,  # handled by Renderer._call
}
