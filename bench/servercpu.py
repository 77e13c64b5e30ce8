"""CPU time a local PostgreSQL's client backends used, read from the kernel rather than from the server.

pg_stat_statements' `total_exec_time` is wall time inside the executor: on a loaded machine it also counts the
time a backend waited for a core, so an exporter that runs three backends at once on two busy cores looks
dearer than one that runs them in turn for the same work. The kernel's accounting does not: a backend's CPU
time is added to the postmaster's `cutime` and `cstime` (/proc/<pid>/stat) when the postmaster reaps it. So
the CPU of everything a set of connections did, connection start-up and authentication included, is the
growth of those two counters between a moment with no client backend and the next one, after the
connections closed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.scrape.database import postmaster_pid
from devtools.pgserver import PostgresServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BackendsGone(RuntimeError):
    """Client backends still running (or not yet reaped) after the wait."""


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: index 0 is field 3 (state), index n - 3 field n."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


class ServerCpu:
    """The postmaster of `server`, and the CPU seconds of its reaped children."""

    def __init__(self, server: PostgresServer) -> None:
        # postmaster.pid's first line (not the parent of a backend of ours: gone once its connection closed)
        self.postmaster = postmaster_pid(server)

    def reaped(self) -> float:
        """cutime + cstime (fields 16 and 17) of the postmaster, in seconds."""
        fields = _stat_fields(self.postmaster)
        return (int(fields[13]) + int(fields[14])) / CLOCK_TICKS

    def _client_children(self) -> int:
        """Children of the postmaster that are client backends (their title names the client's address) or
        exited and not yet reaped."""
        count = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = _stat_fields(int(entry.name))
                if int(fields[1]) != self.postmaster:
                    continue
                title = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue  # exited meanwhile
            if fields[0] == "Z" or b"(" in title or b"[local]" in title:
                count += 1
        return count

    def settled(self, timeout: float = 15.0) -> float:
        """`reaped()` once no client backend is left, waiting up to `timeout` seconds for them to go."""
        deadline = time.monotonic() + timeout
        while self._client_children():
            if time.monotonic() > deadline:
                raise BackendsGone(f"client backends still there after {timeout:g} s")
            time.sleep(0.05)
        return self.reaped()
