"""Sharding across exporter replicas, with the same hash Prometheus' `hashmod` relabelling computes."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from exporter.aws.rds import Instance


def hashmod(value: str, modulus: int) -> int:
    """Prometheus' `action: hashmod`: the last 8 bytes of the MD5 of the value, big-endian, modulo."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def probe_refs(instances: Sequence[Instance]) -> dict[tuple[str, str, str], str]:
    """What /probe?target= takes for each instance, as /discovery lists it: the first configured target
    naming it, else its dbidentifier, else (same identifier in two regions or accounts) account/region/id."""
    names = Counter(i.identifier for i in instances)
    refs: dict[tuple[str, str, str], str] = {}
    for inst in instances:
        if inst.targets:
            refs[inst.key] = inst.targets[0]
        else:
            refs[inst.key] = inst.identifier if names[inst.identifier] == 1 else "/".join(inst.key)
    return refs
