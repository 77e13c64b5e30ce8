#!/bin/bash
# Run once by the postgres image (/docker-entrypoint-initdb.d) when the data volume is first initialised.
# Creates pgwarden's two roles, with the passwords written in the DSN secrets (deploy/secrets/*-dsn), the
# pg_stat_statements extension, and a small demo database for the exporter's per-database collectors.
set -euo pipefail

password_from_dsn() {  # postgresql://user:PASSWORD@host:port/db -> PASSWORD
    sed -E -n 's#^postgres(ql)?://[^:/@]+:([^@]*)@.*$#\2#p' "$1" | head -n 1
}

exporter_password="$(password_from_dsn "${SECRETS_DIR:-/run/secrets}/exporter-dsn")"
responder_password="$(password_from_dsn "${SECRETS_DIR:-/run/secrets}/responder-dsn")"
if [ -z "$exporter_password" ] || [ -z "$responder_password" ]; then
    echo "init.sh: cannot read a password from /run/secrets/exporter-dsn or /run/secrets/responder-dsn" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v exporter_password="$exporter_password" -v responder_password="$responder_password" <<'SQL'
-- The exporter: read-only monitoring, as on RDS (no superuser).
CREATE ROLE pgwarden_exporter LOGIN PASSWORD :'exporter_password' CONNECTION LIMIT 10 IN ROLE pg_monitor;
-- The responder: may cancel/terminate other roles' backends and see every query.
CREATE ROLE pgwarden_responder LOGIN PASSWORD :'responder_password' CONNECTION LIMIT 10
    IN ROLE pg_signal_backend, pg_read_all_stats;

-- shared_preload_libraries=pg_stat_statements is set on the server's command line (docker-compose.yml).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- A demo application database, so the per-database collectors have tables and indexes to report.
CREATE ROLE skillancer NOLOGIN;
CREATE DATABASE skillancer OWNER skillancer;
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname skillancer <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SET ROLE skillancer;
CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_status_idx ON jobs (status);
CREATE INDEX jobs_created_at_idx ON jobs (created_at);  -- never used by the demo: pg_index_unused = 1
INSERT INTO jobs (title, status)
SELECT 'job ' || n, CASE WHEN n % 10 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 10000) AS n;
DELETE FROM jobs WHERE id % 7 = 0;  -- dead tuples for pg_stat_user_tables_n_dead_tup
ANALYZE jobs;
SQL
