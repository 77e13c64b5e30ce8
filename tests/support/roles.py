"""The PostgreSQL roles the responder tests create (the `pg_roles` fixture) and their passwords."""

from __future__ import annotations

from devtools.pgserver import PostgresServer

RESPONDER_ROLE = "pgwarden_responder"
RESPONDER_PASSWORD = "responder-pw"
APP_ROLE = "pgw_app_user"
APP_PASSWORD = "app-pw"
PROTECTED_ROLE = "pgw_batch_user"
PROTECTED_PASSWORD = "batch-pw"


def create_roles(server: PostgresServer) -> None:
    """The responder's role (pg_signal_backend + pg_read_all_stats, not superuser), an app role, a batch
    role."""
    server.execute(
        f"CREATE ROLE {RESPONDER_ROLE} LOGIN PASSWORD '{RESPONDER_PASSWORD}' IN ROLE pg_signal_backend, pg_read_all_stats"
    )
    server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    server.execute(f"CREATE ROLE {PROTECTED_ROLE} LOGIN PASSWORD '{PROTECTED_PASSWORD}'")
