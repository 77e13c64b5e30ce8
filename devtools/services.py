"""Processes of the whole loop on 127.0.0.1: the exporter, the responder, Prometheus and Alertmanager.

Used by the closed-loop test (and, next, by `make demo`): each `start_*` returns a running `Service`; the
caller stops it. Every server binds 127.0.0.1 only, and Alertmanager runs without clustering.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devtools.pgserver import free_port

ROOT = Path(__file__).resolve().parents[1]


class ServiceUnavailable(RuntimeError):
    """A binary is missing or a service did not become ready."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _spawn(
    name: str, argv: list[str], workdir: Path, port: int, ready: str, env: dict[str, str] | None = None
) -> Service:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    service = Service(name, process, port, log)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise ServiceUnavailable(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        try:
            with urllib.request.urlopen(f"{service.url}{ready}", timeout=2):
                return service
        except OSError:
            if time.monotonic() > deadline:
                service.stop()
                raise ServiceUnavailable(f"{name} not ready in 30 s:\n{service.log_tail()}") from None
            time.sleep(0.2)


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


def start_alertmanager(workdir: Path, config: Path) -> Service:
    port = free_port()
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
