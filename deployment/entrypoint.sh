#!/bin/sh
# Container entrypoint: migrate once (when asked), then become the server (exec: PID 1 gets SIGTERM).
set -eu
if [ "${1:-serve}" = "serve" ]; then
  shift || true
  if [ "${RUN_MIGRATIONS:-false}" = "true" ]; then
    studio migrate
    # Done for every worker: the lifespan must not migrate again.
    export RUN_MIGRATIONS=false
  fi
  # With WORKERS > 1, `studio serve` empties (or creates) PROMETHEUS_MULTIPROC_DIR first, so
  # that /metrics sums every worker; set it to place the files (default: a new dir under /tmp).
  exec studio serve --host "${APP_HOST:-0.0.0.0}" --port "${APP_PORT:-8000}" --workers "${WORKERS:-2}" "$@"
fi
exec studio "$@"
