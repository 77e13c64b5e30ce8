"""Configuration plumbing shared by the exporter and the responder: strict models, errors with key paths.

Both programs load configuration in two stages. Stage 1 validates the YAML document against a strict pydantic
schema (`validate_document`): shapes, types, unknown keys. Stage 2 resolves what the schema cannot know
(secrets from the environment or files, cross-references, plugin parameters) into frozen objects, collecting
every problem in an `Errors` so that one run reports them all, each under its dotted key path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pgwarden.dsn import DsnError, check_dsn
from pgwarden.secrets import SecretError, SecretRef

M = TypeVar("M", bound=BaseModel)


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


def validate_document(
    model: type[M], data: Any, more_errors: Callable[[dict[str, Any]], list[str]] | None = None
) -> M:
    """Stage 1: the document as `model`, or a ConfigError with every error (`more_errors` adds checks that
    can still run on the raw mapping when the schema fails, so that one run lists everything)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: the configuration must be a mapping"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        extra = more_errors(data) if more_errors is not None else []
        raise ConfigError(error_lines(exc) + extra) from None


class Errors:
    """Stage 2's error list: `key.path: message` lines, raised together by `raise_if_any`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}")

    def extend(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def secret(self, ref: SecretRef, where: str, environ: Mapping[str, str] | None = None) -> str | None:
        """The secret, or None with the failing key recorded under `where` (`targets.0`, or '' at the root)."""
        try:
            return ref.resolve(environ)
        except SecretError as exc:
            self.add(_join(where, exc.key), exc.message)
            return None

    def dsn(self, ref: SecretRef, where: str, environ: Mapping[str, str] | None = None) -> str | None:
        """A DSN secret that libpq can parse, or None with the error recorded; the DSN is never quoted."""
        conninfo = self.secret(ref, where, environ)
        if conninfo is None:
            return None
        try:
            check_dsn(conninfo)
        except DsnError as exc:
            self.add(_join(where, (ref.sources() or [ref.key])[0]), str(exc))
            return None
        return conninfo

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError(list(self.lines))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
