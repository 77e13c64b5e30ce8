"""PostgreSQL connection strings: validated without echoing them, described without their secrets."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict


class DsnError(ValueError):
    """The DSN does not parse; the message never contains the DSN's text."""


def check_dsn(conninfo: str) -> None:
    """Raise DsnError unless libpq can parse the connection string."""
    try:
        conninfo_to_dict(conninfo)
    except Exception:
        raise DsnError("the DSN does not parse (its text is not shown)") from None


def describe_dsn(conninfo: str) -> str:
    """host:port/dbname of a DSN, never its user or password; libpq's defaults fill what is left out."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparseable dsn>"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or params.get("user") or "postgres")
    return f"{host}:{port}/{dbname}"
