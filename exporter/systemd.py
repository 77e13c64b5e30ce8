"""systemd socket activation (postgres_exporter's --web.systemd-socket): the listening socket systemd passes."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

SD_LISTEN_FDS_START = 3  # sd_listen_fds(3): the first passed descriptor


class NoSocket(Exception):
    """systemd passed this process no socket."""


def inherited_socket(env: Mapping[str, str] | None = None) -> socket.socket:
    """The first socket systemd passed (LISTEN_PID is this process, LISTEN_FDS at least 1), as
    exporter-toolkit's activation takes it; NoSocket otherwise."""
    env = os.environ if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()) or not env.get("LISTEN_FDS", "").isdigit():
        raise NoSocket(
            "--web.systemd-socket: no socket from systemd (LISTEN_PID/LISTEN_FDS are not for this process)"
        )
    if int(env["LISTEN_FDS"]) < 1:
        raise NoSocket("--web.systemd-socket: systemd passed no socket (LISTEN_FDS=0)")
    return socket.socket(fileno=SD_LISTEN_FDS_START)
