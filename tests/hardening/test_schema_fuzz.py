"""Schemathesis over Studio's own OpenAPI: every operation, valid and invalid input, as an admin,
no 5xx, bounded in time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import ROOT, RUN_ID
from tests.hardening.processes import fakes_process, studio_env
from tests.ratelimit.test_multiprocess import studio_processes, wait_healthy
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
        r.raise_for_status()
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


def test_no_operation_answers_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
    failures: list[tuple[Any, ...]] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1
        cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=cases)
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            headers = server.fresh() if case.path in SESSION_ENDING else server.admin
            response = case.call(base_url=server.base, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    (case.method, case.formatted_path, response.status_code, response.text[:200])
                )
                return
            kind = " ".join(
                v for k, vs in response.headers.items() if k.lower() == "content-type" for v in vs
            )
            raw = case.path == "/api/v1/auth/token" or case.path.endswith("/progress")  # raw routes
            if kind.startswith("application/json") and not raw:
                body = response.json()
                assert set(body) == {"success", "message", "error", "result"}, body

        check()
    assert operations >= 20
    assert failures == []
