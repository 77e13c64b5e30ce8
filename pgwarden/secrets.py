"""Secrets in the configuration: a value given inline, in an environment variable, or in a file.

Both programs spell a secret as three sibling keys, `<key>`, `<key>_env` and `<key>_file` (`dsn`, `dsn_env`,
`dsn_file`; `token`, `token_env`, `token_file`); exactly one may be given. `SecretRef` reads them off a model,
and `resolve` returns the secret or raises `SecretError` naming the key that failed, never quoting the secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SecretError(ValueError):
    """A secret cannot be had; `key` is the config key that failed (`dsn_env`, `token_file`, ...)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where one secret comes from: at most one of `value`, `env` (a variable's name) and `file`."""

    key: str
    value: str | None = None
    env: str | None = None
    file: Path | None = None

    @classmethod
    def of(cls, model: Any, key: str) -> SecretRef:
        """The `<key>`, `<key>_env` and `<key>_file` fields of a config model."""
        file = getattr(model, f"{key}_file", None)
        return cls(
            key,
            getattr(model, key, None),
            getattr(model, f"{key}_env", None),
            Path(file) if file is not None else None,
        )

    def sources(self) -> list[str]:
        """The keys given, in `key`, `key_env`, `key_file` order."""
        given = (("", self.value), ("_env", self.env), ("_file", self.file))
        return [self.key + suffix for suffix, v in given if v is not None]

    @property
    def given(self) -> bool:
        return bool(self.sources())

    def check_one(self, *, required: bool = True) -> None:
        """Raise ValueError unless exactly one source is given (or none, when not required)."""
        n = len(self.sources())
        if n > 1 or (required and n == 0):
            raise ValueError(f"give exactly one of {self.key}, {self.key}_env or {self.key}_file")

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret, stripped of surrounding white space; empty or unreadable is a SecretError."""
        environ = os.environ if environ is None else environ
        if self.env is not None:
            value = environ.get(self.env, "").strip()
            if not value:
                raise SecretError(f"{self.key}_env", f"environment variable {self.env} is not set or empty")
            return value
        if self.file is not None:
            try:
                value = self.file.read_text().strip()
            except OSError as exc:
                raise SecretError(f"{self.key}_file", f"cannot read {self.file}: {exc.strerror}") from None
            if not value:
                raise SecretError(f"{self.key}_file", f"{self.file} is empty")
            return value
        if self.value is None:
            raise SecretError(self.key, f"give one of {self.key}, {self.key}_env or {self.key}_file")
        value = self.value.strip()
        if not value:
            raise SecretError(self.key, "is empty")
        return value
