"""The RDS guards scale_instance and grow_storage share, on DescribeDBInstances answers as boto3 returns them."""

from __future__ import annotations

from typing import Any

import pytest

from responder.core import GuardrailRefused
from responder.rds_guards import pending_changes, require_modifiable


def _instance(status: str = "available", **pending: Any) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": "db-1",
        "DBInstanceStatus": status,
        "DBInstanceClass": "db.t3.medium",
        "PendingModifiedValues": pending,
    }


def test_pending_changes_ignore_empty_values() -> None:
    instance = _instance(DBInstanceClass="db.r6g.large", AllocatedStorage=None, ProcessorFeatures=[])
    assert pending_changes(instance) == {"DBInstanceClass": "db.r6g.large"}
    assert pending_changes({"DBInstanceStatus": "available"}) == {}


def test_an_available_instance_without_pending_changes_may_be_modified() -> None:
    require_modifiable(_instance())
    require_modifiable(_instance(MasterUserPassword=""))


@pytest.mark.parametrize("status", ["modifying", "stopped", "backing-up", "storage-optimization", None])
def test_refuses_unless_available(status: str | None) -> None:
    with pytest.raises(GuardrailRefused, match="not 'available'"):
        require_modifiable({"DBInstanceStatus": status})


def test_refuses_with_pending_modifications_and_names_them() -> None:
    with pytest.raises(
        GuardrailRefused, match=r"pending modifications \['AllocatedStorage', 'DBInstanceClass'\]"
    ):
        require_modifiable(_instance(DBInstanceClass="db.r6g.large", AllocatedStorage=200))
