# syntax=docker/dockerfile:1
# The assetsearch server on CPU: one image for the service and the one-shot indexer job
# (see docker-compose.yml). Build: docker build -t assetsearch .
#
# The bundled demo model (builtin:demo) is part of the package. For a real checkpoint, mount
# an open_clip folder read-only and name it:
#   -v /srv/models/my-clip:/models/my-clip:ro -e ASSETSEARCH_MODEL=local-dir:/models/my-clip
#
# torch is pinned as in pyproject.toml. To install the CPU-only torch build (much smaller
# than the default one), pass the index that serves it:
#   docker build --build-arg TORCH_INDEX_URL=<a CPU wheel index> -t assetsearch .

ARG PYTHON_IMAGE=python:3.11-slim

# -- build: a virtual environment with the light client, torch and the server -------------
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/assetsearch
ENV PATH=/opt/assetsearch/bin:$PATH
WORKDIR /src

# The light client first: the server distribution depends on it (`assetsearch-client`).
COPY clients/python clients/python
RUN pip install ./clients/python

# torch on its own layer, before the sources, so a code change does not reinstall it.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
        torch==2.14.1 torchvision==0.29.1

# The server, without the dev extras (no test, lint or codegen tools in the image).
COPY pyproject.toml README.md ./
COPY latent latent
COPY indexer indexer
COPY service service
COPY cli cli
COPY migrations migrations
RUN pip install . \
    && python -c "import latent.models, migrations; print('assetsearch installed')"

# -- runtime: the environment alone, run by an unprivileged user ---------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 assetsearch \
    && useradd --system --uid 10001 --gid assetsearch --create-home \
        --home-dir /home/assetsearch --shell /usr/sbin/nologin assetsearch \
    && mkdir -p /data /models /library \
    && chown assetsearch:assetsearch /data
COPY --from=build /opt/assetsearch /opt/assetsearch
ENV PATH=/opt/assetsearch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ASSETSEARCH_DATA_DIR=/data \
    ASSETSEARCH_HOST=0.0.0.0 \
    ASSETSEARCH_PORT=50051 \
    ASSETSEARCH_METRICS_PORT=9464 \
    ASSETSEARCH_LOG_FORMAT=json
USER assetsearch
WORKDIR /home/assetsearch
VOLUME ["/data"]

# gRPC (ASSETSEARCH_PORT) and Prometheus /metrics (ASSETSEARCH_METRICS_PORT).
EXPOSE 50051 9464

# grpc.health.v1 over loopback: no API key needed (health stays open to probes). With TLS
# on, set ASSETSEARCH_TLS_CA (and the client certificate for mutual TLS) in the container.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD assetsearch health --server "127.0.0.1:${ASSETSEARCH_PORT}" --timeout 4 || exit 1

# SIGTERM (docker stop) drains calls in flight within ASSETSEARCH_SHUTDOWN_GRACE seconds,
# snapshots the indexes and exits 0: give docker stop more time than that (-t / stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["assetsearch"]
CMD ["serve"]
