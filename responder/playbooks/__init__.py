"""The actions, one file each, and the default registry that knows them."""

from __future__ import annotations

from responder.playbooks import grow_storage, scale_instance, terminate_queries, vacuum_analyze
from responder.playbooks.base import ActionRegistry


def default_registry() -> ActionRegistry:
    return ActionRegistry(
        [terminate_queries.SPEC, scale_instance.SPEC, grow_storage.SPEC, vacuum_analyze.SPEC]
    )
