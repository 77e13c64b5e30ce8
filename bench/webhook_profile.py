"""Where a webhook's time goes inside the responder: the bench's payloads (bench/webhook.py: one alert, a
playbook that needs approval, the SQLite journal) posted in-process through aiohttp's test client, `--concurrency`
at a time, under cProfile; prints the functions by cumulative time, then by own time.

The client runs in the same process, so its functions (aiohttp.client*, test_utils) show too: read the server's
(`responder/`, aiohttp.web_*) beside them. Logging is the bench's (JSON at info, every decision a line), written
to /dev/null. Shares of time do not depend on the machine's other work the way the latency bench does.

    .venv/bin/python bench/webhook_profile.py [--requests 5000] [--concurrency 16] [--top 40]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/webhook_profile.py`

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from bench.webhook import TOKEN, body, write_config  # noqa: E402
from pgwarden.logs import setup_logging  # noqa: E402
from responder.app import make_app  # noqa: E402
from responder.config import load_config  # noqa: E402
from responder.playbooks import default_registry  # noqa: E402

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def post_all(
    client: TestClient[web.Request, web.Application], count: int, concurrency: int, start: int
) -> None:
    async def worker(offset: int) -> None:
        for i in range(start + offset, start + count, concurrency):
            async with client.post("/webhook", data=body(i), headers=HEADERS) as resp:
                assert resp.status == 202, await resp.text()
                await resp.read()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))


async def main_async(requests: int, concurrency: int, top: int, save: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="pgwarden-profile-") as tmp:
        os.environ["BENCH_TOKEN"] = TOKEN
        config = load_config(write_config(Path(tmp)), default_registry())
        async with TestClient(TestServer(make_app(config))) as client:
            await post_all(client, 500, concurrency, 10_000_000)  # warm-up
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            await post_all(client, requests, concurrency, 0)
            profile.disable()
            elapsed = time.perf_counter() - started
    if save is not None:
        profile.dump_stats(save)
    print(
        f"{requests} webhooks, {concurrency} at a time: {elapsed:.2f}s under cProfile, {requests / elapsed:.0f}/s"
    )
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, help="also write the profile here (pstats format)")
    args = parser.parse_args()
    setup_logging("info", "json")
    with open(os.devnull, "w") as devnull:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        asyncio.run(main_async(args.requests, args.concurrency, args.top, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
