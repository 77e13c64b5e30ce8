"""pgwarden-exporter: PostgreSQL and RDS metrics for Prometheus."""

__version__ = "0.1.0"
