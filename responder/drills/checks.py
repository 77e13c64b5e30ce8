"""The SQL checks a drill or a recovery runs against a restored instance: each check in its own `READ ONLY`
transaction (rolled back after it), under the statement timeout, its value compared with its expectation."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from tenacity import AsyncRetrying, retry_if_exception_type, stop_before_delay, wait_exponential

from pgwarden import postgres
from responder.core import APPLICATION_NAME
from responder.drills.models import Check, ConnectSpec


def check_conninfo(dsn: str, connect: ConnectSpec, endpoint: tuple[str, int]) -> str:
    """The DSN with its host and port replaced by the endpoint (or the overrides)."""
    host = connect.host_override or endpoint[0]
    port = connect.port_override or endpoint[1]
    return make_conninfo(dsn, host=host, port=str(port))


def _value(raw: Any) -> float | str | None:
    if raw is None or isinstance(raw, bool):
        return None if raw is None else int(raw)
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, Decimal):
        return float(raw)
    return str(raw)


def evaluate(check: Check, value: float | str | None) -> bool:
    expect = check.expect
    if value is None:
        return False
    if expect.equals is not None:
        if isinstance(expect.equals, str) or isinstance(value, str):
            if str(value) != str(expect.equals):
                return False
        elif float(value) != float(expect.equals):
            return False
    if expect.min is None and expect.max is None:
        return True
    try:
        number = float(value)
    except ValueError:
        return False
    return (expect.min is None or number >= expect.min) and (expect.max is None or number <= expect.max)


async def connect_checked(conninfo: str, connect: ConnectSpec) -> psycopg.AsyncConnection[Any]:
    """An autocommit session, retried while a new endpoint does not answer yet: 1 s, 2 s, 4 s ... (at most 10 s)
    apart, as long as the next attempt starts within `connect_retries_for`; then the last error."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        wait=wait_exponential(multiplier=1.0, max=10.0),
        stop=stop_before_delay(connect.connect_retries_for),
        reraise=True,
    )
    options = postgres.SessionOptions(APPLICATION_NAME, connect.connect_timeout)
    conn: psycopg.AsyncConnection[Any] = await retrying(postgres.connect, conninfo, options)
    return conn


async def run_checks(conninfo: str, connect: ConnectSpec, checks: Sequence[Check]) -> list[dict[str, Any]]:
    """Every check, each in a new `BEGIN READ ONLY` transaction that is rolled back after it, under the
    statement timeout: `[{name, value, expect, passed}]`.

    A check cannot make a later one writable: whatever it sets with `set_config(..., false)` is reset before
    the next one, the next transaction is opened `READ ONLY` explicitly, and its SQL goes through the extended
    protocol (one statement, so no `COMMIT; ...` inside).
    """
    results: list[dict[str, Any]] = []
    timeout = f"{int(connect.statement_timeout * 1000)}ms"
    async with await connect_checked(conninfo, connect) as conn:
        await conn.set_read_only(True)  # psycopg now opens every transaction with BEGIN READ ONLY
        for check in checks:
            entry: dict[str, Any] = {"name": check.name, "expect": check.expect.describe()}
            try:
                await conn.execute("RESET ALL")
                await conn.execute(
                    "SELECT set_config('statement_timeout', %s, false),"
                    " set_config('default_transaction_read_only', 'on', false)",
                    (timeout,),
                )
                async with conn.transaction(force_rollback=True):
                    # prepare=True: the extended protocol, which runs one statement only
                    cur = await conn.execute(check.sql.encode(), prepare=True)
                    row = await cur.fetchone()
                value = _value(row[0]) if row else None
                entry.update(value=value, passed=evaluate(check, value))
            except psycopg.Error as exc:
                entry.update(value=None, passed=False, error=f"{type(exc).__name__}: {exc}".strip())
            results.append(entry)
    return results


def failed_check_reason(results: Sequence[dict[str, Any]]) -> str | None:
    """`check 'x' failed: value 0, expected {'min': 1}` for the first failing check, or None."""
    for r in results:
        if not r["passed"]:
            detail = f"error {r['error']}" if r.get("error") else f"value {r['value']!r}"
            return f"check {r['name']!r} failed: {detail}, expected {r['expect']}"
    return None
