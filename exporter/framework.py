"""The families of the scrape itself: pg_up, the scrape's and each collector's outcome, the connection budget."""

from __future__ import annotations

from exporter.collectors.base import ROWS_CUT
from exporter.exposition import Family as F
from exporter.sizes import STALE_SIZES

PG_UP = F("pg_up", "gauge", "Whether the last scrape could connect to the server (1 yes, 0 no).")
LAST_DURATION = F(
    "pg_exporter_last_scrape_duration_seconds", "gauge", "Duration of the last scrape of this target."
)
LAST_ERROR = F(
    "pg_exporter_last_scrape_error",
    "gauge",
    "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
)
USER_QUERIES_LOAD_ERROR = F(
    "pg_exporter_user_queries_load_error",
    "gauge",
    "Whether the user queries file was loaded and parsed successfully (1 for error, 0 for success).",
    ("filename", "hashsum"),
    "no --extend.query-path is given (a file that fails to load stops the start: when present it is 0)",
)
SCRAPES = F("pg_exporter_scrapes_total", "counter", "Scrapes of this target since the exporter started.")
COLLECTOR_DURATION = F(
    "pg_scrape_collector_duration_seconds",
    "gauge",
    "Duration of the collector's last refresh.",
    ("collector",),
)
COLLECTOR_SUCCESS = F(
    "pg_scrape_collector_success",
    "gauge",
    "Whether the collector's last refresh succeeded (1) or failed (0).",
    ("collector",),
)
COLLECTOR_AGE = F(
    "pg_exporter_collector_data_age_seconds",
    "gauge",
    "Age of the data a collector served: 0 when refreshed by this scrape, more when served from its TTL cache.",
    ("collector",),
)
DATABASE_SUCCESS = F(
    "pg_scrape_collector_database_success",
    "gauge",
    "Per-database collectors: whether the last refresh read this database (1) or failed on it (0); a failed "
    "database's rows are left out, the other databases' served.",
    ("collector", "datname"),
    "no per-database collector is enabled, or the server is down",
)
CONNECTIONS = F(
    "pg_exporter_connections",
    "gauge",
    "Connections the exporter holds to this server after the scrape: open (idle or in use), and in_use.",
    ("state",),
)
CONNECTIONS_PEAK = F(
    "pg_exporter_connections_peak", "gauge", "Most connections open at once since the previous scrape."
)
CONNECTIONS_MAX = F(
    "pg_exporter_connections_max", "gauge", "The target's connection budget (max_connections), all databases."
)
FRAMEWORK_FAMILIES = (
    PG_UP,
    LAST_DURATION,
    LAST_ERROR,
    USER_QUERIES_LOAD_ERROR,
    SCRAPES,
    COLLECTOR_DURATION,
    COLLECTOR_SUCCESS,
    COLLECTOR_AGE,
    DATABASE_SUCCESS,
    CONNECTIONS,
    CONNECTIONS_PEAK,
    CONNECTIONS_MAX,
    ROWS_CUT,
    STALE_SIZES,
)
