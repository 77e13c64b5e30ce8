"""The demo's timeline: each step of the loop with the time its own source recorded, printed in the order
things happened, and the sources read for it (PostgreSQL's server log, Prometheus' ALERTS, the journal)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.services import Service

STOPPED_BACKEND = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\] (?:ERROR|FATAL):\s+"
    r"(canceling statement due to user request|terminating connection due to administrator command)"
)
# Longest time between an event and the moment its source shows it (a journal commit, a rule evaluation
# finishing, a log line written): a line waits until every source has been read this long after its time.
SETTLE = 1.0


@dataclass(order=True)
class Event:
    at: float  # seconds since the epoch, as the event's source recorded it
    seq: int
    key: str = field(compare=False)
    text: str = field(compare=False)


class Timeline:
    """The steps of the loop, printed in the order they happened.

    Each event carries the time its source recorded (the responder's journal, PostgreSQL's server log and
    pg_stat_activity, Prometheus' ALERTS samples, the demo's own calls), not the moment the demo noticed it:
    the sources are polled one after the other, so an effect can be noticed before its cause. A line is held
    back until every source has been read SETTLE seconds after its time, then printed in time order.
    """

    def __init__(self, steps: Sequence[str] = ()) -> None:
        self.start = time.time()
        self.steps = tuple(steps)
        self.seen: set[str] = set()
        self._held: list[Event] = []
        self._seq = itertools.count()

    def event(self, key: str, at: float, text: str | None = None) -> None:
        """An event noticed (once per key), with the time it happened."""
        if key not in self.seen:
            self.seen.add(key)
            self._held.append(Event(at, next(self._seq), key, text or key))

    def release(self, read_from: float) -> None:
        """Prints the held lines that every source, read from `read_from` on, would have shown by then."""
        self._print([e for e in self._held if e.at <= read_from - SETTLE])

    def flush(self) -> None:
        self._print(list(self._held))

    def _print(self, due: list[Event]) -> None:
        for event in sorted(due):
            self._held.remove(event)
            print(f"[{event.at - self.start:7.2f}s] {event.text}", flush=True)

    def done(self) -> bool:
        return all(step in self.seen for step in self.steps)

    def missing(self) -> list[str]:
        return [step for step in self.steps if step not in self.seen]


def get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return json.load(resp)


def journal_time(iso: str) -> float:
    """A journal timestamp (2026-01-01T10:00:00.123Z) as seconds since the epoch."""
    return dt.datetime.fromisoformat(iso).timestamp()


class ServerLog:
    """New lines of PostgreSQL's server log: the backends the responder cancelled or terminated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def stopped_backends(self) -> list[tuple[int, float, str]]:
        """(pid, when, "cancelled" or "terminated") for each such line written since the last call."""
        with contextlib.suppress(OSError), self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            found = []
            for line in complete.decode(errors="replace").splitlines():
                if m := STOPPED_BACKEND.match(line):
                    when = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)
                    how = "cancelled" if m[3].startswith("canceling") else "terminated"
                    found.append((int(m[2]), when.timestamp(), how))
            return found
        return []


def alert_transitions(prometheus: Service, alerts: Sequence[str]) -> list[tuple[str, str, float]]:
    """(alertname, pending or firing, when) of these alerts: the first ALERTS sample of each state, stamped
    with the rule evaluation that wrote it."""
    selector = f'ALERTS{{alertname=~"{"|".join(alerts)}"}}[15m]'
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": selector})
    series = get_json(url)["data"]["result"]
    return [
        (s["metric"]["alertname"], s["metric"]["alertstate"], float(s["values"][0][0]))
        for s in series
        if s["values"]
    ]
