"""Each receiver's rate limit: at most `rate_per_minute` messages in any 60 seconds (a sliding window, kept by
the process that sends; with several replicas each keeps its own)."""

from __future__ import annotations

import collections
from collections.abc import Callable

WINDOW = 60.0


class SlidingWindow:
    """The times of the messages sent in the last `window` seconds."""

    def __init__(self, rate: int, window: float = WINDOW) -> None:
        self.rate = rate
        self.window = window
        self._sent: collections.deque[float] = collections.deque()

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def take(self, now: float) -> bool:
        """Whether one more message may go now (and if so, it is counted)."""
        self._trim(now)
        if len(self._sent) >= self.rate:
            return False
        self._sent.append(now)
        return True

    def free_in(self, now: float) -> float:
        """Seconds until a message may go again."""
        self._trim(now)
        if len(self._sent) < self.rate:
            return 0.0
        return self._sent[0] + self.window - now


class RateLimits:
    """A sliding window per receiver name."""

    def __init__(self, rate_of: Callable[[str], int], window: float = WINDOW) -> None:
        self._rate_of = rate_of
        self._window = window
        self._windows: dict[str, SlidingWindow] = {}

    def __getitem__(self, receiver: str) -> SlidingWindow:
        if receiver not in self._windows:
            self._windows[receiver] = SlidingWindow(self._rate_of(receiver), self._window)
        return self._windows[receiver]
