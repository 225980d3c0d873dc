"""Registry reload in a real `studio serve --workers 2`, in front of real fake downstreams.

One server walks through the cases of docs/RELIABILITY.md in order: a route added, a
permission tightened, a service moved while a stream runs on it, a broken file, a reload under
load. Each reload is sent as an operator does (`studio reload`, SIGHUP through the pid file);
every worker answers with the new version before the test goes on.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.observability import multiprocess
from app.registry.live import fingerprint
from tests.conftest import ROOT, RUN_ID
from tests.fakes.server import FakeService, make_service
from tests.gateway.conftest import PASSWORD, USER
from tests.hardening.processes import studio_env, studio_serve
from tests.support import live_server

pytestmark = [pytest.mark.slow, pytest.mark.services]

API = "/api/v1"
SECRET = "s3cr3t-value-never-logged"
CONFIRM = 12  # fresh connections in a row that must all report a version (both workers)


def registry(nexus: str, zen: str, *, extra_route: bool = False, tight: bool = False) -> str:
    """The registry file: nexus explicit with its routes, zen wildcard (JSON is YAML)."""
    routes = [{"method": "GET", "path": "/documents", "permission": "nexus:read"}]
    if extra_route:
        permission = "nexus:write" if tight else "nexus:read"
        routes.append({"method": "GET", "path": "/jobs/{job_id}", "permission": permission})
    services: dict[str, Any] = {
        "nexus": {"base_url": nexus, "mode": "explicit", "routes": routes,
                  "description": "${RELOAD_SECRET}"},  # interpolated; never logged
        "zen": {"base_url": zen, "mode": "wildcard"},
    }  # fmt: skip
    for name, service in services.items():
        service["health_path"] = "/health"
        service["auth"] = {
            "type": "basic",
            "username_env": f"{name.upper()}_SERVICE_USER",
            "password_env": f"{name.upper()}_SERVICE_PASSWORD",
        }
    services["nexus"]["permissions"] = {"read": "nexus:read", "write": "nexus:write"}
    services["zen"]["permissions"] = {"read": "zen:chat", "write": "zen:chat"}
    return json.dumps({"services": services})


class Server:
    """The running `studio serve` and how to reload it."""

    def __init__(self, base: str, files: Settings, env: dict[str, str], out: Path) -> None:
        self.base = base
        self.files = files
        self.env = env
        self.out = out

    def reload(self) -> str:
        """`studio reload` (the pid file); the version the files now have."""
        studio = Path(sys.executable).parent / "studio"
        done = subprocess.run(
            [str(studio), "reload"], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        version = fingerprint(self.files)
        assert version is not None
        return version

    async def registry(self) -> dict[str, Any]:
        """The registry block of /api/v1/health from whichever worker takes a new connection."""
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{self.base}{API}/health")
        return dict(answer.json()["result"]["checks"]["registry"])

    async def all_report(self, key: str, value: Any, timeout: float = 30.0) -> None:
        """Until CONFIRM fresh connections in a row see `value` (both workers have it)."""
        seen = 0

        async def check() -> bool:
            nonlocal seen
            block = await self.registry()
            got = block["last_reload"]["outcome"] if key == "outcome" else block[key]
            seen = seen + 1 if got == value else 0
            return seen >= CONFIRM

        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, f"{key} != {value}"
            await asyncio.sleep(0.05)


def write(path: Path, text: str) -> None:
    # Replaced whole, as a deployment does: a reader sees the old file or the new one.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def sign_in(base: str) -> dict[str, str]:
    """A new account (role viewer: nexus:read, zen:chat) and its Bearer header."""
    body = {"email": f"reload-{uuid.uuid4().hex[:8]}@example.com", "password": "a-long-password"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await http.post(f"{API}/auth/register", json=body)).status_code == 201
        tokens = (await http.post(f"{API}/auth/login", json=body)).json()["result"]
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_registry_reloads_live_in_every_worker(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> None:
    assert redis_url is not None, "several workers need a shared Redis"  # `services` tests
    fakes: dict[str, FakeService] = {
        "nexus": make_service("nexus", USER, PASSWORD),
        "zen_a": make_service("zen", USER, PASSWORD),
        "zen_b": make_service("zen", USER, PASSWORD),
    }
    async with (
        live_server(fakes["nexus"]) as nexus,
        live_server(fakes["zen_a"]) as zen_a,
        live_server(fakes["zen_b"]) as zen_b,
    ):
        base_file = tmp_path / "services.yaml"
        overlay = tmp_path / "overlay.yml"
        write(base_file, registry(nexus, zen_a))
        write(overlay, "{}\n")
        files = Settings(
            _env_file=None, service_config_path=base_file, service_overlay_path=overlay
        )
        temp = tmp_path / "tmp"
        temp.mkdir()
        env = studio_env(
            database_url, redis_url, f"studio-test-{RUN_ID}:reload-{uuid.uuid4().hex[:6]}:",
            tmp_path, TMPDIR=str(temp), LOG_LEVEL="INFO", SERVICE_CONFIG_PATH=str(base_file),
            SERVICE_OVERLAY_PATH=str(overlay), PID_FILE=str(tmp_path / "studio.pid"),
            RELOAD_SECRET=SECRET,
        )  # fmt: skip
        env.pop(multiprocess.ENV, None)
        out = tmp_path / "serve.out"
        async with studio_serve(env, out) as base:
            server = Server(base, files, env, out)
            first = fingerprint(files)
            await server.all_report("version", first)
            await _cases(server, base_file, fakes, nexus, zen_a, zen_b)
            assert SECRET not in out.read_text(errors="replace")


async def _cases(
    server: Server,
    base_file: Path,
    fakes: dict[str, FakeService],
    nexus: str,
    zen_a: str,
    zen_b: str,
) -> None:
    headers = await sign_in(server.base)
    async with httpx.AsyncClient(base_url=server.base, timeout=30, headers=headers) as http:
        # 1. A Nexus route added: not forwarded before, forwarded after, no restart.
        missing = await http.get(f"{API}/nexus/jobs/7")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ROUTE_NOT_FOUND")
        write(base_file, registry(nexus, zen_a, extra_route=True))
        await server.all_report("version", server.reload())
        for _ in range(CONFIRM):
            assert (await _fresh(server.base, headers, "/nexus/jobs/7")).status_code == 200
        assert fakes["nexus"].calls("/jobs/7")

        # 2. Its permission tightened: the viewer is refused before the downstream sees it.
        calls = len(fakes["nexus"].calls("/jobs/7"))
        write(base_file, registry(nexus, zen_a, extra_route=True, tight=True))
        await server.all_report("version", server.reload())
        for _ in range(CONFIRM):
            refused = await _fresh(server.base, headers, "/nexus/jobs/7")
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
        assert len(fakes["nexus"].calls("/jobs/7")) == calls

        # 3. Zen moved to another downstream mid-stream: the stream ends on the old one.
        fakes["zen_a"].sse_gate = gate = asyncio.Event()
        async with http.stream("GET", f"{API}/zen/sse?gated=1&n=3&interval=0") as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("id: 0")
            write(base_file, registry(nexus, zen_b, extra_route=True, tight=True))
            await server.all_report("version", server.reload())
            assert (await _fresh(server.base, headers, "/zen/echo")).status_code == 200
            assert fakes["zen_b"].calls("/echo") and not fakes["zen_a"].calls("/echo")
            events = ["id: 0"]
            while len(events) < 3:
                gate.set()  # the old downstream sends its next event
                line = await anext(lines)
                if line.startswith("id: "):
                    events.append(line)
        assert [e[:5] for e in events] == ["id: 0", "id: 1", "id: 2"]
        assert fakes["zen_a"].sse_sent == 3 and not fakes["zen_b"].calls("/sse")

        # 4. A broken file: rejected by every worker, the old registry keeps serving.
        serving = (await server.registry())["version"]
        write(base_file, registry(nexus, zen_b).replace('"explicit"', '"explicitly"'))
        server.reload()
        await server.all_report("outcome", "rejected")
        assert (await server.registry())["version"] == serving
        assert (await _fresh(server.base, headers, "/zen/echo")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'studio_registry_reloads_total{outcome="rejected"} 2.0' in metrics
        log = server.out.read_text(errors="replace")
        assert "reload rejected" in log and "services.nexus.mode" in log

        # 5. A reload under load: no request fails while every worker swaps.
        failures: list[int] = []
        done = asyncio.Event()

        async def load() -> int:
            sent = 0
            async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
                while not done.is_set():
                    answer = await client.get(f"{API}/nexus/documents")
                    if answer.status_code != 200:
                        failures.append(answer.status_code)
                    sent += 1
            return sent

        runners = [asyncio.create_task(load()) for _ in range(6)]
        write(base_file, registry(nexus, zen_a, extra_route=True))
        await server.all_report("version", server.reload())
        done.set()
        sent = sum(await asyncio.gather(*runners))
        assert sent > 0 and failures == []


async def _fresh(base: str, headers: dict[str, str], path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        return await http.get(f"{API}{path}")
