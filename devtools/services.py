"""Processes of the whole loop on 127.0.0.1: the exporter, the responder, Prometheus and Alertmanager.

Used by the closed-loop test (and, next, by `make demo`): each `start_*` returns a running `Service`; the
caller stops it. Every server binds 127.0.0.1 only, and Alertmanager runs without clustering.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from devtools.processes import STOP_GRACE, NotReady, Process, free_port, spawn, wait_http


class ServiceUnavailable(RuntimeError):
    """A binary is missing or a service did not become ready."""


@dataclass
class Service:
    """A server process listening on 127.0.0.1:`port`."""

    name: str
    process: Process
    port: int
    ready_path: str = "/"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path | None:
        return self.process.log

    def stop(self, timeout: float = STOP_GRACE) -> None:
        self.process.stop(timeout)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)

    def restart(self, env: dict[str, str] | None = None) -> Service:
        """The same command on the same port, once stopped; the old log is kept beside the new one."""
        self.stop()
        log = self.log or Path(os.devnull)
        if self.log is not None:
            self.log.rename(self.log.with_suffix(f".{time.time():.0f}.log"))
        argv = [str(arg) for arg in cast("list[str]", self.process.popen.args)]
        return _spawn(self.name, argv, log.parent, self.port, self.ready_path, env)


def _spawn(
    name: str, argv: list[str], workdir: Path, port: int, ready: str, env: dict[str, str] | None = None
) -> Service:
    process = spawn(name, argv, workdir / f"{name}.log", env)
    try:
        wait_http(process, f"http://127.0.0.1:{port}{ready}")
    except NotReady as exc:
        raise ServiceUnavailable(str(exc)) from None
    return Service(name, process, port, ready)


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ServiceUnavailable(f"none of {', '.join(names)} is installed")


def start_program(module: str, workdir: Path, config: dict[str, Any], env: dict[str, str]) -> Service:
    """`python -m exporter` or `python -m responder` with `config` written to a YAML file."""
    path = workdir / f"{module}.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [sys.executable, "-m", module, "--config", str(path), "--web.listen-address", f"127.0.0.1:{port}"]
    return _spawn(module, argv, workdir, port, "/healthz", dict(os.environ, **env))


def start_exporter(workdir: Path, config: dict[str, Any], env: dict[str, str]) -> Service:
    return start_program("exporter", workdir, config, env)


def start_responder(workdir: Path, config: dict[str, Any], env: dict[str, str]) -> Service:
    return start_program("responder", workdir, config, env)


def start_alertmanager(workdir: Path, config: Path, port: int | None = None) -> Service:
    """Alertmanager on `port` (a free one by default)."""
    port = port or free_port()
    argv = [
        binary("prometheus-alertmanager", "alertmanager"),
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _spawn("alertmanager", argv, workdir, port, "/-/ready")


def start_prometheus(
    workdir: Path, scrape: dict[str, str], rules: list[Path], alertmanager: Service, interval: str = "1s"
) -> Service:
    """Prometheus scraping `scrape` (job name → host:port) every `interval`, evaluating `rules`."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(r) for r in rules],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]} for job, address in scrape.items()
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _spawn("prometheus", argv, workdir, port, "/-/ready")


def query(prometheus: Service, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise ServiceUnavailable(f"query {expr!r} failed: {body}")
    return list(body["data"]["result"])
