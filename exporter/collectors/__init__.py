"""Every collector, one per module, found by the registry (`COLLECTORS`); `exporter.assemble` makes the enabled
ones from a loaded configuration."""

from __future__ import annotations

from exporter.collectors.registry import COLLECTORS

__all__ = ["COLLECTORS"]
