"""The kinds of receiver, one module each: `responder/notify/transports/<kind>.py` with a module-level
`TRANSPORT` (a `responder.notify.model.Transport` whose `kind` is the module's name).

Nothing lists them: `discover` imports every module of this package, so adding a file adds a kind.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from responder.notify.model import Transport


@functools.cache
def discover() -> dict[str, Transport]:
    """kind -> the `TRANSPORT` of every module in this package."""
    found: dict[str, Transport] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        transport = getattr(module, "TRANSPORT", None)
        if transport is None or not callable(getattr(transport, "send", None)):
            raise TypeError(f"{module.__name__} has no module-level TRANSPORT (a Transport)")
        if transport.kind != module_info.name:
            raise TypeError(
                f"{module.__name__}: TRANSPORT.kind is {transport.kind!r}; a kind is named after its file"
            )
        found[transport.kind] = transport
    return found


def transport_for(kind: str) -> Transport | None:
    """The transport of receivers of `kind`, None when no module provides it."""
    return discover().get(kind)
