"""The actions, one module each: `responder/playbooks/<name>.py` with a module-level `SPEC`.

Nothing lists them: `discover` imports every module of this package, so adding a file adds an action.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from responder.core import ActionRegistry, ActionSpec


def discover() -> list[ActionSpec[Any]]:
    """The `SPEC` of every module in this package, in module-name order."""
    specs = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, ActionSpec):
            raise TypeError(f"{module.__name__} has no module-level SPEC (an ActionSpec)")
        if spec.name != module_info.name:
            raise TypeError(
                f"{module.__name__}: SPEC.name is {spec.name!r}; an action is named after its file"
            )
        specs.append(spec)
    return specs


def default_registry() -> ActionRegistry:
    """Every discovered action."""
    return ActionRegistry(discover())
