# Everyday verbs. Needs only Python 3.11+ and make: uv is bootstrapped into .tools/.
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

# What `make` installs: the runtime, tracing and the embedded stand-ins (SQLite, in-process
# Redis), plus the dev group. The image installs only the runtime and tracing (Dockerfile).
SYNC := $(UV) sync --frozen --extra embedded --extra otel

.DEFAULT_GOAL := help
.PHONY: help install run run-with-fakes fakes test test-browser mutate ts-check lint lint-deploy format bench bench-login bench-timings clean

help: ## List the verbs (this text)
	@echo "make <verb>, with:"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(SYNC)
	@touch $@

# Playwright on top (--inexact keeps the rest); redone whenever the base sync is.
.venv/.browser: .venv/.synced
	$(SYNC) --inexact --group browser
	@touch $@

install: .venv/.synced ## Create .venv from the lock file (no browser tooling)

# Local development's registry overlay (loopback URLs, env-var credentials), not the dev stage's.
LOCAL_OVERLAY = SERVICE_OVERLAY_PATH=config/local.yml

run: install ## Migrate and serve on $(HOST):$(PORT) (embedded SQLite + Redis stand-in without DATABASE_URL/REDIS_HOST)
	$(UV) run --frozen studio migrate
	@$(UV) run --frozen studio hint
	env $(LOCAL_OVERLAY) $(UV) run --frozen studio serve --host $(HOST) --port $(PORT)

FAKE_CREDS = $(foreach s,NEXUS ZEN AGENTS INGESTION,$(s)_SERVICE_USER=studio $(s)_SERVICE_PASSWORD=studio-dev-password)

fakes: install ## The four fake downstreams on 127.0.0.1:9101-9104 (Basic Auth studio/studio-dev-password)
	$(UV) run --frozen python -m tests.fakes

run-with-fakes: install ## Like `run`, with the fake downstreams started beside it
	$(UV) run --frozen studio migrate
	@$(UV) run --frozen python -m tests.fakes & fakes=$$!; \
	  trap 'kill $$fakes 2>/dev/null' EXIT INT TERM; \
	  env $(LOCAL_OVERLAY) $(FAKE_CREDS) $(UV) run --frozen studio serve --host $(HOST) --port $(PORT)

# Coverage of app/ ([tool.coverage.*] in pyproject.toml): the report is printed, and the run
# fails under its fail_under floor.
test: .venv/.browser ## The whole suite (real PostgreSQL and Redis when they answer), with coverage
	$(UV) run --frozen coverage run -m pytest
	$(UV) run --frozen coverage report

test-browser: .venv/.browser ## Only the headless-browser tests (Debian's /usr/bin/chromium)
	$(UV) run --frozen pytest -m browser

# MUTATE_ARGS: mutant ids to run only those, `--list`, `--timeout SECONDS` (per mutant).
mutate: install ## Plant each bug of tools/mutate/table.py in a copy, run its tests; fails on a survivor
	$(UV) run --frozen python -m tools.mutate $(MUTATE_ARGS)

TS_CLIENT := clients/typescript
ts-check: install ## Type-check the TypeScript client against the schema of the current code
	env $(LOCAL_OVERLAY) $(UV) run --frozen studio openapi --output $(TS_CLIENT)/openapi.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	cd $(TS_CLIENT) && npm run --silent generate
	cd $(TS_CLIENT) && npm run --silent check

lint: install ## ruff (lint and format) and strict mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy app benchmarks

GROOVY_LINT_VERSION ?= 15.2.2
.tools/groovy/node_modules/.bin/npm-groovy-lint:
	npm install --silent --no-audit --no-fund --prefix .tools/groovy "npm-groovy-lint@$(GROOVY_LINT_VERSION)"

lint-deploy: install .tools/groovy/node_modules/.bin/npm-groovy-lint ## Dockerfile, compose, CloudFormation, Jenkinsfile
	$(UV) sync --frozen --inexact --group deploy
	$(UV) run --frozen --group deploy hadolint Dockerfile
	$(UV) run --frozen --group deploy docker-compose -f docker-compose.yml config --quiet
	$(UV) run --frozen --group deploy cfn-lint deployment/cloudformation/studio.yml
	.tools/groovy/node_modules/.bin/npm-groovy-lint --noserver --failon warning Jenkinsfile

format: install ## Apply ruff's formatting and fixes
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench-login: install ## event-loop CPU per login; /health latency alone and during a 20-login storm
	$(UV) run --frozen python -m benchmarks.login_cpu
	$(UV) run --frozen python -m benchmarks.login_storm

bench-timings: install ## The failure timings the tests assert only as order and counts (BENCHMARKS.md)
	$(UV) run --frozen python -m benchmarks.timings

bench: install ## Studio vs nginx and a naive proxy, SSE, upload RSS, login storm (BENCHMARKS.md)
	$(UV) run --frozen python -m benchmarks.run $(BENCH_ARGS)

clean: ## Remove .venv, .tools, caches, logs and generated client files
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache var logs artifacts
	rm -rf $(TS_CLIENT)/node_modules $(TS_CLIENT)/openapi.json $(TS_CLIENT)/src/schema.d.ts
