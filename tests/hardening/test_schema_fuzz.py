"""Schemathesis over Studio's own OpenAPI: every operation, valid and invalid input, as an admin,
no 5xx, bounded in time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import schemathesis
from hypothesis import settings
from schemathesis import Case

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ROOT, RUN_ID
from tests.gateway.conftest import NAMES
from tests.hardening.processes import fakes_process, studio_env, studio_processes, wait_healthy
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]
ADMIN_PASSWORD = "schema-fuzz-admin-password"
# These end the caller's session: each such case gets a session of its own.
SESSION_ENDING = {"/api/v1/auth/logout", "/api/v1/auth/password", "/api/v1/auth/sessions/{sid}",
                  "/api/v1/auth/refresh"}  # fmt: skip


class Server:
    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.email = email
        self.admin = self.fresh()

    def fresh(self) -> dict[str, str]:
        r = httpx.post(
            f"{self.base}/api/v1/auth/login",
            json={"email": self.email, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['result']['access_token']}"}


@pytest.fixture(scope="module")
def server(
    database_url: str, redis_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    assert redis_url is not None
    logs = tmp_path_factory.mktemp("schema-fuzz")
    with fakes_process(logs) as urls:
        env = studio_env(database_url, redis_url, f"studio-test-{RUN_ID}:fuzz:", logs, **urls)
        email = f"fuzz-admin-{uuid.uuid4().hex[:8]}@example.com"
        subprocess.run(
            [str(Path(sys.executable).parent / "studio"), "create-admin", "--email", email],
            cwd=ROOT, env={**env, "STUDIO_ADMIN_PASSWORD": ADMIN_PASSWORD},
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        port = free_port()
        with studio_processes(env, [port], logs):
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_healthy(base))
            yield Server(base, email)


# Every phase that sends single requests: the schema's examples, the coverage phase (boundary
# values such as a string one past its maxLength, wrong types, missing and unexpected
# parameters and methods), then fuzzing in both modes. Seeded and derandomized: the same cases
# every run, so a failure reproduces and a pass does not depend on luck.
CONFIG = {
    "seed": 14,
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "generation": {"mode": "all", "max-examples": 15, "deterministic": True, "no-shrink": True},
    "suppress-health-check": ["all"],
}


def _document() -> dict[str, Any]:
    """Studio's OpenAPI document as the server below serves it (checked there): built in
    process from the same environment, downstream addresses aside."""
    urls = {f"{name.upper()}_URL": "http://127.0.0.1:9" for name in NAMES}
    log_dir = Path(tempfile.gettempdir()) / "studio-schema-fuzz"
    env = studio_env("postgresql+asyncpg://127.0.0.1/unused", "redis://127.0.0.1", "", log_dir)
    with mock.patch.dict(os.environ, {**env, **urls}, clear=True):
        return create_app(Settings(_env_file=None)).openapi()


# Loaded at collection, so each operation is a test of its own: the lazy fixture loader
# (schemathesis.pytest.from_fixture) relies on a pytest internal that pytest 9 removed.
DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))


def test_the_served_document_is_the_fuzzed_one(server: Server) -> None:
    served = httpx.get(f"{server.base}/openapi.json", timeout=30).json()
    assert served == DOCUMENT
    assert sum(1 for _ in schema.get_all_operations()) >= 20


@schema.parametrize()
@settings(deadline=None, database=None)
def test_no_operation_answers_5xx(case: Case[Any], server: Server) -> None:
    headers = server.fresh() if case.path in SESSION_ENDING else server.admin
    response = case.call(base_url=server.base, headers=headers, timeout=30)
    assert response.status_code < 500, (
        case.method, case.formatted_path, case.query, str(case.body)[:300],
        response.status_code, response.text[:300],
    )  # fmt: skip
    kind = response.headers.get("content-type", [""])[0]
    raw = case.path == "/api/v1/auth/token" or case.path.endswith("/progress")  # raw routes
    if kind.startswith("application/json") and not raw:
        body = response.json()
        assert set(body) == {"success", "message", "error", "result"}, body
