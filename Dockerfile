# syntax=docker/dockerfile:1.7
# Studio: a locked, non-root runtime image. Build: docker build -t studio .

# Stage 1: uv, pinned (the version the Makefile uses, which writes uv.lock).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Stage 2: the locked environment, built on the same base as the runtime.
FROM python:3.13.3-slim AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Runtime needs only: no dev or browser groups, no embedded stand-ins (fakeredis, aiosqlite);
# the `otel` extra so that tracing can be switched on (OTEL_EXPORTER_OTLP_ENDPOINT) without a rebuild.
# Dependencies first: this layer is reused until the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra otel --no-install-project
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra otel --no-editable

# Stage 3: only the runtime.
FROM python:3.13.3-slim AS runtime
ARG STUDIO_UID=1000
RUN groupadd --system --gid "${STUDIO_UID}" studio \
    && useradd --system --uid "${STUDIO_UID}" --gid studio --home-dir /srv/studio \
       --shell /usr/sbin/nologin studio
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000 \
    WORKERS=2 \
    LOG_DIR=/srv/studio/logs \
    ENVIRONMENT=prod
WORKDIR /srv/studio
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root alembic.ini ./
COPY --chown=root:root alembic ./alembic
COPY --chown=root:root config ./config
COPY --chown=root:root deployment/config ./deployment/config
COPY --chown=root:root deployment/entrypoint.sh /usr/local/bin/studio-entrypoint
RUN mkdir -p /srv/studio/logs && chown studio:studio /srv/studio/logs
# studio:studio, by number so the orchestrator can verify it is not root.
USER 1000:1000
EXPOSE 8000
# No curl in the image: the standard library asks /health.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('APP_PORT', '8000'), timeout=8).status == 200 else 1)"]
# SIGTERM reaches uvicorn (exec), which stops accepting and drains in-flight requests and
# streams for up to 30 s before exiting; give the orchestrator's stop timeout more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["studio-entrypoint"]
CMD ["serve"]

# Fake downstreams for docker compose (not for production).
FROM runtime AS fakes
COPY --chown=root:root tests/__init__.py ./tests/__init__.py
COPY --chown=root:root tests/fakes ./tests/fakes
ENTRYPOINT ["python", "-m", "tests.fakes"]
CMD []
