#!/bin/sh
# The image's entrypoint. Arguments that start with a flag are pgwarden-exporter's: the Helm chart
# prometheus-postgres-exporter passes only `args` (--config.file=..., --web.listen-address=...), as to
# postgres_exporter's image, whose entrypoint is the exporter. Anything else is a command of its own
# (pgwarden-responder ..., pgwarden-exporter ..., sh).
set -e
case "${1:-}" in
  -*) exec pgwarden-exporter "$@" ;;
  "") exec pgwarden-exporter ;;
esac
exec "$@"
