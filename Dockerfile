# syntax=docker/dockerfile:1
# pgwarden's image: pgwarden-exporter and pgwarden-responder (console scripts), as a non-root user.
#
#   docker build -t pgwarden .                      # the runtime image (the default, last stage)
#   docker build --target moto -t pgwarden-moto .   # + moto[server]: the AWS stand-in of docker-compose.yml
#
#   docker run --rm -p 127.0.0.1:9187:9187 -e DATA_SOURCE_NAME=postgresql://... pgwarden
#   docker run --rm pgwarden pgwarden-responder --config /etc/pgwarden/responder.yml --check-config
#
# Multi-stage because it pays: the wheel is built in a throw-away stage, so neither the source tree nor the
# build backend lands in the runtime image, and the moto stage reuses every runtime layer.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a wheel of the project (runtime dependencies only; no dev extra) ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pgwarden ./pgwarden
COPY exporter ./exporter
COPY responder ./responder
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- pgwarden: the runtime image ---
FROM ${PYTHON_IMAGE} AS pgwarden
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PGWARDEN_HEALTHCHECK_URL=http://127.0.0.1:9187/healthz
RUN groupadd --system --gid 10001 pgwarden \
    && useradd --system --uid 10001 --gid pgwarden --home-dir /var/lib/pgwarden --shell /usr/sbin/nologin pgwarden \
    && mkdir -p /etc/pgwarden /var/lib/pgwarden \
    && chown pgwarden:pgwarden /var/lib/pgwarden
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels
# Flags alone run pgwarden-exporter (the Helm chart prometheus-postgres-exporter passes only `args`).
COPY deploy/docker-entrypoint.sh /usr/local/bin/pgwarden-entrypoint
WORKDIR /var/lib/pgwarden
# The responder's SQLite journal lives here (journal: sqlite:///var/lib/pgwarden/journal.db): mount a volume.
USER 10001:10001
EXPOSE 9187 9096
# Both programs serve /healthz; the responder's container sets PGWARDEN_HEALTHCHECK_URL to :9096.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['PGWARDEN_HEALTHCHECK_URL'], timeout=4).read()"]
ENTRYPOINT ["pgwarden-entrypoint"]
CMD ["pgwarden-exporter"]

# --- moto: the runtime image plus moto[server], the AWS stand-in of docker-compose.yml (never production) ---
FROM pgwarden AS moto
USER root
RUN pip install "moto[server]>=5.0"
USER 10001:10001
ENV PGWARDEN_HEALTHCHECK_URL=http://127.0.0.1:5000/moto-api/
EXPOSE 5000
CMD ["python", "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]

# --- the default target: the runtime image ---
FROM pgwarden AS runtime
