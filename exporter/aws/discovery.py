"""Prometheus HTTP service discovery: every configured target and every AWS-discovered instance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.aws.rds import Instance
from exporter.aws.render import AWSView, tag_label
from exporter.aws.shard import probe_refs
from exporter.target import TargetConfig


def discovery_groups(
    address: str, targets: Sequence[TargetConfig], view: AWSView | None
) -> list[dict[str, Any]]:
    """One target group per configured target and per discovered instance, all scraped at `address`
    through `/probe`: `__param_target` is what /probe takes."""
    instances = view.known if view is not None else ()
    by_target: dict[str, list[Instance]] = {}
    for inst in instances:
        for name in inst.targets:
            by_target.setdefault(name, []).append(inst)
    refs = probe_refs(instances)
    groups: list[dict[str, Any]] = []
    for t in targets:
        labels = {"__param_target": t.name, "target": t.name}
        found = by_target.get(t.name, [])
        if found:
            labels.update(_instance_labels(found[0]))
        elif t.rds is not None:  # not polled (yet): what the configuration says
            labels.update({"dbidentifier": t.rds.identifier, "aws_region": t.rds.region})
            if t.rds.account_id:
                labels["aws_account_id"] = t.rds.account_id
        groups.append({"targets": [address], "labels": labels})
    for inst in instances:
        if inst.targets:
            continue
        labels = {"__param_target": refs[inst.key], **_instance_labels(inst)}
        groups.append({"targets": [address], "labels": labels})
    return groups


def _instance_labels(inst: Instance) -> dict[str, str]:
    labels = {"dbidentifier": inst.identifier, "aws_region": inst.region, "aws_account_id": inst.account_id}
    labels.update({tag_label(k): v for k, v in inst.tags})
    return labels
