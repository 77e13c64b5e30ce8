# syntax=docker/dockerfile:1
# pgwarden's images, each from its install extra (pyproject.toml), as a non-root user:
#
#   docker build --target exporter -t pgwarden-exporter .     # pgwarden[exporter]: pgwarden-exporter only
#   docker build --target responder -t pgwarden-responder .   # pgwarden[responder]: pgwarden-responder
#   docker build -t pgwarden .                                # pgwarden[all]: both (the default, last stage)
#   docker build --target moto -t pgwarden-moto .             # + moto[server]: the AWS stand-in of docker-compose.yml
#
#   docker run --rm -p 127.0.0.1:9187:9187 -e DATA_SOURCE_NAME=postgresql://... pgwarden-exporter
#   docker run --rm pgwarden-responder pgwarden-responder --config /etc/pgwarden/responder.yml --check-config
#
# Multi-stage because it pays: the wheel is built once in a throw-away stage, so neither the source tree nor the
# build backend lands in an image, and every image shares the `base` layers (user, directories, health check).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a wheel of the project (its dependencies are installed per image, by extra) ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pgwarden ./pgwarden
COPY exporter ./exporter
COPY responder ./responder
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- base: what every image shares; nothing of pgwarden installed yet ---
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PGWARDEN_HEALTHCHECK_URL=http://127.0.0.1:9187/healthz
RUN groupadd --system --gid 10001 pgwarden \
    && useradd --system --uid 10001 --gid pgwarden --home-dir /var/lib/pgwarden --shell /usr/sbin/nologin pgwarden \
    && mkdir -p /etc/pgwarden /var/lib/pgwarden \
    && chown pgwarden:pgwarden /var/lib/pgwarden
# Flags alone run pgwarden-exporter (the Helm chart prometheus-postgres-exporter passes only `args`); any other
# command runs as given, so the responder's CMD is unaffected.
COPY deploy/docker-entrypoint.sh /usr/local/bin/pgwarden-entrypoint
ENTRYPOINT ["pgwarden-entrypoint"]
WORKDIR /var/lib/pgwarden
# Both programs serve /healthz; the responder's image (and container) sets PGWARDEN_HEALTHCHECK_URL to :9096.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['PGWARDEN_HEALTHCHECK_URL'], timeout=4).read()"]

# --- exporter: pgwarden[exporter], no matplotlib, Jinja2 or anything else only the responder uses ---
FROM base AS exporter
COPY --from=build /wheels /tmp/wheels
RUN pip install "$(ls /tmp/wheels/pgwarden-*.whl)[exporter]" && rm -rf /tmp/wheels
USER 10001:10001
EXPOSE 9187
CMD ["pgwarden-exporter"]

# --- responder: pgwarden[responder] ---
FROM base AS responder
COPY --from=build /wheels /tmp/wheels
RUN pip install "$(ls /tmp/wheels/pgwarden-*.whl)[responder]" && rm -rf /tmp/wheels
# The SQLite journal lives here (journal: sqlite:///var/lib/pgwarden/journal.db): mount a volume.
USER 10001:10001
ENV PGWARDEN_HEALTHCHECK_URL=http://127.0.0.1:9096/healthz
EXPOSE 9096
CMD ["pgwarden-responder", "--config", "/etc/pgwarden/responder.yml"]

# --- pgwarden: both programs, pgwarden[all] ---
FROM base AS pgwarden
COPY --from=build /wheels /tmp/wheels
RUN pip install "$(ls /tmp/wheels/pgwarden-*.whl)[all]" && rm -rf /tmp/wheels
USER 10001:10001
EXPOSE 9187 9096
CMD ["pgwarden-exporter"]

# --- moto: the pgwarden image plus moto[server], the AWS stand-in of docker-compose.yml (never production) ---
FROM pgwarden AS moto
USER root
RUN pip install "moto[server]>=5.0"
USER 10001:10001
ENV PGWARDEN_HEALTHCHECK_URL=http://127.0.0.1:5000/moto-api/
EXPOSE 5000
CMD ["python", "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]

# --- the default target: the pgwarden image (both programs) ---
FROM pgwarden AS runtime
