# Cerebro: two stages in one file.
#   base    - Python and the data-science dependencies (numpy, pandas, scikit-learn, ...), read from
#             pyproject.toml: rebuilt only when the dependencies change. Other DS projects
#             (cron jobs, Vigilante's slice) build FROM it too.
#   deploy  - the platform and the modules on top, RabbitMQ/Redis for the one-container setup,
#             a non-root user, supervisord as the entry point.
# Build: docker build --target deploy -t cerebro:0.1.0 .     (docker-compose.yml does this;
#        --build-arg BASE_IMAGE=... builds on another python:3.11-slim-bookworm, e.g. the local
#        one of scripts/docker-base-image.sh; scripts/docker-smoke.sh builds, runs and checks it)
# Run:   docker run -v cerebro-data:/data -p 127.0.0.1:8000:8000 \
#          -e CEREBRO_CALLBACK_SECRET=... -e CEREBRO_FLOWER_PASSWORD=... \
#          -e CEREBRO_SUPERVISOR_PASSWORD=... -e CEREBRO_MODEL_SIGNING_KEY=... \
#          -e CEREBRO_KAFKA_BOOTSTRAP=kafka:9092 cerebro:0.1.0

# The base image: python:3.11-slim-bookworm from Docker Hub, or any image giving the same (a
# Debian bookworm with python/python -m venv on PATH): --build-arg BASE_IMAGE=... (an engine
# without a registry builds on one made by scripts/docker-base-image.sh)
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY pyproject.toml /tmp/pyproject.toml
# The dependencies of pyproject.toml only (not the project): one source of truth for versions.
RUN python -m venv /opt/venv \
 && python -c "import tomllib; d = tomllib.load(open('/tmp/pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt /tmp/pyproject.toml

FROM base AS deploy
# RabbitMQ (+ epmd) and Redis for the single-container setup (docker-compose runs them as
# their own services instead and sets CEREBRO_RUN_RABBITMQ/REDIS=false).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cerebro \
 && useradd --system --uid 10001 --gid cerebro --home-dir /var/lib/cerebro --shell /usr/sbin/nologin cerebro \
 && mkdir -p /data /sherlock /var/lib/cerebro /var/log/cerebro \
 && chown cerebro:cerebro /data /sherlock /var/lib/cerebro /var/log/cerebro
WORKDIR /app
# The code and configuration stay root's and read-only to the services (uid 10001); only the
# data volume, Sherlock's folder, the state and the log folders are theirs to write.
COPY . /app
RUN pip install --no-cache-dir --no-deps /app

# Every %(ENV_X)s of supervisord.conf has a value here (cerebro up computes them outside Docker),
# except CEREBRO_SUPERVISOR_PASSWORD: a secret, given at run time (supervisord refuses to start
# without it), like CEREBRO_CALLBACK_SECRET and CEREBRO_FLOWER_PASSWORD.
ENV CEREBRO_BIN=/opt/venv/bin \
    CEREBRO_HOME=/app \
    CEREBRO_DATA_VOLUME=/data \
    SHERLOCK_DIR=/sherlock \
    CEREBRO_STATE_DIR=/var/lib/cerebro \
    CEREBRO_LOG_DIR=/var/log/cerebro \
    CEREBRO_HOST=0.0.0.0 \
    CEREBRO_PORT=8000 \
    CEREBRO_FLOWER_ADDRESS=0.0.0.0 \
    CEREBRO_FLOWER_PORT=5555 \
    CEREBRO_SUPERVISOR_PORT=9001 \
    CEREBRO_SUPERVISOR_USER=cerebro \
    CEREBRO_EPMD_PORT=4369 \
    CEREBRO_RABBITMQ_PORT=5672 \
    CEREBRO_RABBITMQ_DIST_PORT=25672 \
    CEREBRO_RABBITMQ_MANAGEMENT_PORT=15672 \
    CEREBRO_REDIS_PORT=6379 \
    CEREBRO_KAFKA_PORT=9092 \
    CEREBRO_TANSU=tansu \
    CEREBRO_RUN_RABBITMQ=true \
    CEREBRO_RUN_REDIS=true \
    CEREBRO_RUN_KAFKA=false \
    CEREBRO_RUN_SIMULATOR=false \
    CEREBRO_RUN_BOOTSTRAP=true \
    CEREBRO_RUN_API=true \
    CEREBRO_RUN_WORKER=true \
    CEREBRO_RUN_BEAT=true \
    CEREBRO_RUN_FLOWER=true \
    CEREBRO_RUN_CONSUMER=true \
    CEREBRO_RUN_SUBSCRIBER=true \
    OMP_NUM_THREADS=1

# /data: models (serving processes only read it: mount it read-only where nothing builds);
# /sherlock: the exception log every container of a deployment writes and the digest reads.
VOLUME ["/data", "/sherlock"]
EXPOSE 8000 5555
USER 10001:10001
# Healthy = every program supervisord is configured to start is RUNNING and ready (the probes
# `cerebro up` waits on: AMQP login, Redis PING, /readyz, a worker answering a ping, the consumer
# group assigned, the subscriber's queues consumed...), not just the API's /healthz; docs/docker.md
# says which probe an orchestrator, a load balancer and this HEALTHCHECK each use. The first start
# builds every model (the bootstrap program): the start period leaves it the time.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/opt/venv/bin/cerebro", "health"]
ENTRYPOINT ["/opt/venv/bin/supervisord", "--nodaemon", "--configuration", "/app/supervisord.conf"]
