"""/proc accounting: CPU time and memory of process sessions, and of the machine, on Linux."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

# Before each scrape, wait (at most QUIET_LIMIT s) until no exporter used CPU for QUIET_WINDOW s.
QUIET_WINDOW = 0.25
QUIET_LIMIT = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_stats() -> Iterator[list[str]]:
    """For every process: its pid, then the /proc/PID/stat fields after the command name (state, ppid,
    pgrp, session, ..., utime at index 12, stime at 13)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 12:
            yield [entry.name, *fields]


def session_stats(sid: int) -> list[list[str]]:
    return [fields for fields in proc_stats() if fields[4] == str(sid)]


def cpu_ticks(fields: list[str]) -> int:
    return int(fields[12]) + int(fields[13])


def session_memory_kb(sid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB summed over the processes of session `sid` (the exporter and any child)."""
    rss = hwm = 0
    for fields in session_stats(sid):
        try:
            status = Path(f"/proc/{fields[0]}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


def session_cpu_ticks(sid: int) -> int:
    """User + system CPU time, in clock ticks, of the processes of session `sid`."""
    return sum(cpu_ticks(fields) for fields in session_stats(sid))


def machine_busy_ticks() -> int:
    """CPU time used on the machine (user, nice, system, irq, softirq), in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return user + nice + system + irq + softirq


class CpuWatch:
    """How much CPU processes other than the benchmark's own (this one, the exporters, PostgreSQL) use."""

    def __init__(self, sids: Sequence[int], postmaster: int) -> None:
        self.sids = {str(sid) for sid in sids}
        self.postmaster = str(postmaster)
        self.started = time.monotonic()
        self.machine = machine_busy_ticks()
        self.own = self.own_ticks()

    def own_ticks(self) -> int:
        me = os.times()
        ticks = round((me.user + me.system) * CLOCK_TICKS)
        for fields in proc_stats():
            if fields[4] in self.sids or self.postmaster in (fields[0], fields[2]):
                ticks += cpu_ticks(fields)
        return ticks

    def foreign_cores(self) -> float:
        """Average number of cores the other processes kept busy since the watch started."""
        elapsed = time.monotonic() - self.started
        foreign = (machine_busy_ticks() - self.machine) - (self.own_ticks() - self.own)
        return max(0.0, foreign / CLOCK_TICKS / max(elapsed, 1e-9))


def wait_quiet(sids: Sequence[int], window: float = QUIET_WINDOW, limit: float = QUIET_LIMIT) -> bool:
    """Wait (at most `limit` s) until the exporters use no CPU for `window` s, so that a scrape never
    overlaps the aftermath of the previous one (garbage collection, freeing a large response) in another
    exporter. False when they did not become idle in time."""
    deadline = time.monotonic() + limit
    before = [session_cpu_ticks(sid) for sid in sids]
    while time.monotonic() < deadline:
        time.sleep(window)
        now = [session_cpu_ticks(sid) for sid in sids]
        if all(n - b <= 1 for n, b in zip(now, before, strict=True)):
            return True
        before = now
    return False
