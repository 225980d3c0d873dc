#!/usr/bin/env bash
# Jenkins: run `make test` (or the make target given, e.g. `mutate`) against throwaway PostgreSQL
# and Redis containers, then remove them. Like .ci/run, the browser and promtool tests are
# required; the test run's JUnit XML lands in artifacts/junit/.
set -euo pipefail
target="${1:-test}"
tag="studio-ci-${BUILD_NUMBER:-local}-$$"
cleanup() { docker rm -f "${tag}-pg" "${tag}-redis" >/dev/null 2>&1 || true; }
trap cleanup EXIT

docker run -d --name "${tag}-pg" -e POSTGRES_HOST_AUTH_METHOD=trust -p 127.0.0.1::5432 postgres:16-alpine >/dev/null
docker run -d --name "${tag}-redis" -p 127.0.0.1::6379 redis:7-alpine >/dev/null
pg_port=$(docker port "${tag}-pg" 5432/tcp | head -n1 | cut -d: -f2)
redis_port=$(docker port "${tag}-redis" 6379/tcp | head -n1 | cut -d: -f2)
for _ in $(seq 1 60); do
  docker exec "${tag}-pg" pg_isready -q -U postgres && break
  sleep 1
done

mkdir -p artifacts/junit
export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:${pg_port}/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:${redis_port}/0"
export STUDIO_REQUIRE_SERVICES=1
export STUDIO_REQUIRE_BROWSER=1
export STUDIO_REQUIRE_PROMTOOL=1
if [ "$target" = test ]; then
  # Only the suite's run: every mutant's pytest would overwrite the report.
  export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --junitxml=artifacts/junit/pytest.xml"
fi
make "$target"
