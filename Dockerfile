# syntax=docker/dockerfile:1
# One image for the worker and the API (see docker-compose.yml and docs/deployment.md):
#   worker (default):  notifications worker --env production
#   API:               notifications api --host 0.0.0.0 --port 8000
#   migrations:        notifications migrate

# --- build: install the package and its dependencies into a virtualenv -------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# .dockerignore keeps .venv, .git, tests, local data and secrets out of the context.
COPY . .
RUN /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

# --- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENV=production \
    DATA_DIR=/app/data \
    LOG_FILE=off \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    METRICS_BIND=0.0.0.0:9464

RUN groupadd --system --gid 10001 notifications \
    && useradd --system --uid 10001 --gid notifications --home-dir /app --create-home --shell /usr/sbin/nologin notifications

COPY --from=build /opt/venv /opt/venv
COPY --chown=notifications:notifications deploy/healthcheck.py /app/healthcheck.py

WORKDIR /app
USER notifications:notifications

EXPOSE 8000 9464

# Worker: this container's pollers are live on both task queues; API: HTTP answers on its --port.
# `auto` tells the two apart from the command of PID 1 (exec-form CMD: PID 1 is the process itself,
# so SIGTERM from `docker stop` reaches it and starts the graceful shutdown).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/app/healthcheck.py", "auto"]

STOPSIGNAL SIGTERM
CMD ["notifications", "worker", "--env", "production"]
