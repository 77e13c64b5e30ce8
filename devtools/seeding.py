"""What the dev tools put into moto: RDS PostgreSQL instances and CloudWatch AWS/RDS datapoints.

Used by deploy/seed-moto.py (the compose stack's seeder, which mounts devtools/ next to itself), the panel
test and the demo. Only boto3 clients come in: the caller chooses the endpoint, region and credentials.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

POSTGRES_INSTANCE: Mapping[str, Any] = {
    "Engine": "postgres",
    "EngineVersion": "15.4",
    "DBInstanceClass": "db.t3.medium",
    "AllocatedStorage": 100,
    "MasterUsername": "master",
    "MasterUserPassword": "not-a-real-password",
    "BackupRetentionPeriod": 7,
    "StorageType": "gp2",
}


def create_postgres(rds: Any, identifier: str, **params: Any) -> dict[str, Any]:
    """CreateDBInstance of a PostgreSQL 15 db.t3.medium (100 GiB gp2, 7 days of backups); `params` override
    or add CreateDBInstance parameters. Returns the DBInstance."""
    created: dict[str, Any] = rds.create_db_instance(
        DBInstanceIdentifier=identifier, **{**POSTGRES_INSTANCE, **params}
    )["DBInstance"]
    return created


def put_rds_datapoints(
    cloudwatch: Any, identifier: str, when: dt.datetime, points: Mapping[str, tuple[str, float]]
) -> None:
    """One PutMetricData in AWS/RDS for the instance `identifier` at `when`: metric name -> (unit, value)."""
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": identifier}],
                "Timestamp": when,
                "Value": value,
                "Unit": unit,
            }
            for name, (unit, value) in points.items()
        ],
    )
