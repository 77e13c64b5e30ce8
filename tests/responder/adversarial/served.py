"""A responder app served on a real 127.0.0.1 port from a background thread, for tests driven by hypothesis
(which cannot drive the async test client) and by plain HTTP clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from devtools.pgserver import free_port


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """`app` listening on 127.0.0.1 while the block runs; its base URL."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(app)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
