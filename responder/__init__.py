"""pgwarden-responder: a guarded Alertmanager webhook receiver that remediates PostgreSQL on AWS RDS."""

__version__ = "0.1.0"
