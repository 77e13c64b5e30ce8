"""The peak of a count sampled in a background thread while a block runs (the benchmarks' and the tests'
connection watches)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class PeakWatch:
    """Calls `sample()` in a thread, every `interval` seconds (0: back to back), from `__enter__` to
    `__exit__`; `peak` is the largest value it returned and `samples` how many times it ran."""

    def __init__(self, sample: Callable[[], int], interval: float = 0.0) -> None:
        self.sample, self.interval = sample, interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self.samples += 1
            if self.interval:
                self._stop.wait(self.interval)

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
