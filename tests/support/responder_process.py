"""A responder run as a process (`python -m responder`), as the crash tests start, kill and start it again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from tests.support.responder import TOKEN

ROOT = Path(__file__).resolve().parents[2]


def start_responder(
    config_path: Path, port: int, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The responder on 127.0.0.1:`port`, its token in RESPONDER_TEST_TOKEN, its output (JSON logs) in `log`."""
    environ = {**os.environ, "RESPONDER_TEST_TOKEN": TOKEN, "PYTHONPATH": str(ROOT), **(env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "responder", "--config", str(config_path),
             "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json"],
            stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=ROOT,
        )  # fmt: skip


async def wait_ready(
    session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Until `/healthz` answers 200 (AssertionError with the log if the process ends or 30 s pass)."""
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_bytes()  # noqa: ASYNC240
        try:
            async with session.get(f"{base}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, log.read_bytes()  # noqa: ASYNC240
        await asyncio.sleep(0.1)
