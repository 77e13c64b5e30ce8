"""External services of the tests: skip locally when one is missing, fail under
PGWARDEN_REQUIRE_SERVICES=1."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, MotoUnavailable, start_moto


def services_required() -> bool:
    return os.environ.get("PGWARDEN_REQUIRE_SERVICES", "") not in ("", "0")


def missing_service(what: str) -> None:
    """Skip locally, fail under PGWARDEN_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"{what} is required (PGWARDEN_REQUIRE_SERVICES=1) but missing", pytrace=False)
    pytest.skip(f"{what} is not installed")


def moto_or_missing() -> MotoServer:
    """A started moto server; without moto, the test skips (or fails under PGWARDEN_REQUIRE_SERVICES=1)."""
    try:
        return start_moto()
    except MotoUnavailable as exc:
        missing_service(f"moto server ({exc})")
        raise AssertionError("unreachable") from exc


def installed(name: str, package: str) -> str:
    """The path of the program `name`; without it the test skips (or fails under
    PGWARDEN_REQUIRE_SERVICES=1)."""
    path = shutil.which(name)
    if path is None:
        missing_service(f"{name} (Debian package {package})")
        raise AssertionError("unreachable")
    return path


@contextlib.contextmanager
def moto_in_environment() -> Iterator[tuple[MotoServer, pytest.MonkeyPatch]]:
    """A moto server found the way boto3 finds AWS (AWS_ENDPOINT_URL and fake credentials in the environment)
    inside the block, and the MonkeyPatch that set them; the server is stopped after. Without moto, the test
    skips (or fails under PGWARDEN_REQUIRE_SERVICES=1)."""
    server = moto_or_missing()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint_url}.items():
            patch.setenv(key, value)
        try:
            yield server, patch
        finally:
            server.stop()
