"""How the HTTP service serves what it scrapes: postgres_exporter's telemetry path and constant labels, and the
probes of targets given by DSN (`exporter.probe`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.exposition import escape

if TYPE_CHECKING:
    from exporter.probe import ProbeSettings


@dataclass(frozen=True)
class ServeOptions:
    """`telemetry_path` serves /metrics' answer (postgres_exporter's --web.telemetry-path); `constant_labels`
    (rendered, `a="1",b="2"`) go first in every series (--constantLabels); `probes` answers /probe for a target
    that is not a configured one (a DSN, with an auth module)."""

    telemetry_path: str = "/metrics"
    constant_labels: str = ""
    probes: ProbeSettings | None = None

    def labels(self, *more: str) -> str:
        """The constant labels, then `more` (each rendered already, or empty)."""
        return ",".join(part for part in (self.constant_labels, *more) if part)


def render_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{name}="{escape(value)}"' for name, value in labels.items())
