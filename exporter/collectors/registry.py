"""The collectors, found by looking: every module of this package that defines a concrete `Collector`.

Adding a collector is adding its module; nothing else lists them. `COLLECTORS` is in output order (`order`,
then `name`), and `collectors_model` makes the `collectors:` section of the configuration from them: one key
per collector, validated by that collector's `options_model`, plus `defaults`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable
from typing import Any

from pydantic import create_model

from exporter.collectors.base import Collector
from exporter.collectors.options import CollectorDefaults, CollectorOptions
from pgwarden.config import StrictModel

PACKAGE = "exporter.collectors"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

CollectorClass = type[Collector[Any, Any]]


class CollectorRegistryError(Exception):
    """A collector module declares something the registry cannot accept (a programming error)."""


def discover(package: str = PACKAGE) -> tuple[CollectorClass, ...]:
    """The concrete collectors defined in the package's modules, in output order."""
    found: dict[str, CollectorClass] = {}
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{module_info.name}")
        for cls in vars(module).values():
            if not (
                inspect.isclass(cls)
                and issubclass(cls, Collector)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
            ):
                continue
            _check(cls, found)
            found[cls.name] = cls
    return tuple(sorted(found.values(), key=lambda c: (c.order, c.name)))


def _check(cls: CollectorClass, found: dict[str, CollectorClass]) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name) or name == "defaults":
        raise CollectorRegistryError(f"{cls.__module__}.{cls.__qualname__}: name must be a snake_case word")
    if name in found:
        raise CollectorRegistryError(
            f"collector {name!r} is defined twice: {found[name].__module__}, {cls.__module__}"
        )
    for attr in ("families", "source"):
        if not hasattr(cls, attr):
            raise CollectorRegistryError(f"collector {name!r} declares no {attr}")
    if not issubclass(cls.options_model, CollectorOptions):
        raise CollectorRegistryError(f"collector {name!r}: options_model must subclass CollectorOptions")


class CollectorsBase(StrictModel):
    """`collectors:`: `defaults`, and one key per collector (added by `collectors_model`)."""

    defaults: CollectorDefaults = CollectorDefaults()

    def options(self, name: str) -> CollectorOptions:
        """`collectors.<name>`, as that collector's options model."""
        value = getattr(self, name)
        assert isinstance(value, CollectorOptions)
        return value


def collectors_model(collectors: Iterable[CollectorClass]) -> type[CollectorsBase]:
    fields: dict[str, Any] = {c.name: (c.options_model, c.options_model()) for c in collectors}
    return create_model("CollectorsConfig", __base__=CollectorsBase, **fields)


COLLECTORS = discover()
