"""How a collector is refreshed (its TTL and timeout), what a refresh leaves behind (its state), and rendering
collectors as they are read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.base import Collector
from exporter.db import ServerInfo
from exporter.exposition import Fragment


@dataclass(frozen=True)
class Scheduled:
    """A collector as a target's scrapes run it: its data served for `ttl` seconds, each fetch given `timeout`."""

    collector: Collector[Any, Any]
    ttl: float
    timeout: float


@dataclass
class CollectorState:
    """The last refresh of one collector for one label variant."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fragments: list[Fragment] = field(default_factory=list)
    refreshed_at: float = -1.0
    duration: float = 0.0
    success: bool = False  # every database read
    served: bool = False  # rendered: every database, or (per-database collectors) those read
    databases: dict[str, bool] = field(default_factory=dict)  # per-database collectors: which were read
    unreachable: bool = False  # per-database collectors: a database of the last refresh took no connection

    def fresh(self, now: float, ttl: float) -> bool:
        return self.success and ttl > 0 and now - self.refreshed_at < ttl


@dataclass(frozen=True)
class Batch:
    """Collectors of one target refreshed together: their states (for one label variant), the server, the
    scrape's constant labels, and when the refresh began, once it held their locks (the collectors' durations
    count from there)."""

    collectors: Sequence[Collector[Any, Any]]
    states: dict[str, CollectorState]
    server: ServerInfo
    const_labels: str
    started: float = 0.0


class RenderAsRead:
    """Renders each collector once all its `reads` (by default one) succeeded, from the event loop's next turn:
    by then the visit has sent the next collector's statement, and the database works on it meanwhile. A
    collector with a failed read, and every one not rendered yet, is rendered on leaving the block normally
    (in order), when all that is known of its failures is known."""

    def __init__(
        self,
        collectors: Sequence[Collector[Any, Any]],
        render: Callable[[Collector[Any, Any]], None],
        reads: Mapping[str, int] | None = None,
    ) -> None:
        self.collectors = collectors
        self._render = render
        self._left = dict(reads) if reads is not None else {c.name: 1 for c in collectors}
        self._rendered: set[str] = set()

    def __enter__(self) -> RenderAsRead:
        return self

    def read(self, collector: Collector[Any, Any], failed: bool) -> None:
        left = self._left.pop(collector.name, None)
        if left is None or failed:  # not to be rendered early (any more)
            return
        if left > 1:
            self._left[collector.name] = left - 1
        else:
            asyncio.get_running_loop().call_soon(self._render_once, collector)

    def _render_once(self, collector: Collector[Any, Any]) -> None:
        if collector.name not in self._rendered:
            self._rendered.add(collector.name)
            self._render(collector)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:  # cancelled (the scraper closing): nothing more to serve
            for collector in self.collectors:
                self._render_once(collector)


def data_age(state: CollectorState, scrape_started: float, now: float) -> float:
    """0 for data read during this scrape, else how long ago it was read."""
    return 0.0 if state.refreshed_at >= scrape_started else now - state.refreshed_at


def safe_error(exc: BaseException) -> str:
    """An error message fit for logs: psycopg's connection errors can quote the DSN, never its password,
    but keep only the first line to stay terse."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
