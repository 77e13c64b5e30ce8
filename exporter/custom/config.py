"""`custom_queries:`, pgwarden's own custom queries: one statement, the metrics read from its columns.

```yaml
custom_queries:
  - name: job_queue
    sql: SELECT queue, count(*) AS depth FROM jobs GROUP BY queue
    databases: [app]        # or all; default: the DSN's database
    ttl: 30s
    timeout: 2s
    metrics:
      - {column: depth, name: app_job_queue_depth, type: gauge, help: "Jobs waiting", labels: [queue]}
```

This module imports nothing of the exporter but the option models, so the configuration can import it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from exporter.collectors.options import CollectorOptions
from pgwarden.config import StrictModel
from pgwarden.durations import Duration

METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels the exporter sets itself: `target` when /metrics serves several targets, `datname` when a query
# runs in more than the DSN's database.
RESERVED_LABELS = ("target", "datname")


class CustomMetric(StrictModel):
    """One metric family read from one column; each label is a column of the same row."""

    column: str = Field(min_length=1)
    name: str = Field(pattern=METRIC_NAME_PATTERN)
    type: Literal["gauge", "counter"] = "gauge"
    help: str = ""
    labels: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _labels(self) -> CustomMetric:
        for label in self.labels:
            if not LABEL_NAME.match(label):
                raise ValueError(f"labels: {label!r} is not a valid label name")
            if label in RESERVED_LABELS:
                raise ValueError(f"labels: {label!r} is set by the exporter")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels: a label is listed twice")
        if self.column in self.labels:
            raise ValueError(f"labels: {self.column!r} is the metric's own column")
        return self


class CustomQuery(StrictModel):
    """One statement, run (and committed) with its timeout; a collector named `custom:<name>`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    sql: str = Field(min_length=1)
    databases: Literal["all"] | tuple[str, ...] | None = None
    ttl: Duration | None = None
    timeout: Duration | None = None
    enabled: bool = True
    metrics: tuple[CustomMetric, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> CustomQuery:
        if isinstance(self.databases, tuple) and not self.databases:
            raise ValueError("databases: list at least one database, or say all")
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metrics: duplicate metric name {', '.join(dupes)}")
        return self

    @property
    def options(self) -> CollectorOptions:
        return CollectorOptions(enabled=self.enabled, timeout=self.timeout, ttl=self.ttl)

    @property
    def metric_help(self) -> dict[str, str]:
        return {m.name: m.help or f"Column {m.column} of custom query {self.name}." for m in self.metrics}
