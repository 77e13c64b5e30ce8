"""Configuration plumbing shared by the exporter and the responder: strict models, errors with key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(Exception):
    """The configuration is invalid; `errors` lists `key.path: message` lines, every error at once."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class StrictModel(BaseModel):
    """Unknown keys are errors; loaded configuration never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def error_lines(exc: ValidationError, prefix: str = "") -> list[str]:
    """`key.path: message` for each validation error (`targets.0.dsn_env: ...`), under `prefix` if given."""
    lines = []
    for err in exc.errors():
        path = ".".join(
            [prefix, *(str(part) for part in err["loc"])] if prefix else [str(p) for p in err["loc"]]
        )
        message = (
            "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        )
        lines.append(f"{path or '<root>'}: {message}")
    return lines


def load_yaml(path: Path) -> Any:
    """The parsed file; a ConfigError that never quotes the file's text (a line may hold a DSN)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError([f"{path}: invalid YAML{where}: {problem}"]) from None
