"""External services of the tests: skip locally when one is missing, fail under PGWARDEN_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os

import pytest

from devtools.motoserver import MotoServer, MotoUnavailable, start_moto


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
