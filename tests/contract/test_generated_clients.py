"""The schema is a contract a front end can generate from: clients generated from the live
`/openapi.json` (openapi-python-client; openapi-typescript with openapi-fetch) run a whole
session against a live Studio and its downstream, with no hand-written request code, and the
Python flow passes `mypy --strict` with the generated package."""

from __future__ import annotations

import ast
import re
import sys
import uuid
from pathlib import Path

import pytest

from tests.contract.conftest import LiveStudio
from tests.contract.toolchain import (
    FLOWS,
    PACKAGE,
    TS_CLIENT,
    build_ts_flow,
    generate_python_client,
    mypy_strict,
    run,
)

pytestmark = pytest.mark.slow

PYTHON_FLOW = FLOWS / "python_flow.py"
TS_FLOW = TS_CLIENT / "src" / "flow.ts"
STEPS = (
    "register",
    "login",
    "me",
    "refresh",
    "proxied JSON POST",
    "wildcard GET",
    "SSE",
    "logout",
    "session gone after logout",
)
# What would send a request without the generated client.
HTTP_MODULES = {"httpx", "requests", "urllib", "urllib3", "aiohttp", "http.client", "socket"}


def account() -> tuple[str, str]:
    return f"contract-{uuid.uuid4().hex[:12]}@example.com", "contract-password-1"


def assert_every_step(stdout: str) -> None:
    done = [line.removeprefix("ok ") for line in stdout.splitlines() if line.startswith("ok ")]
    assert done == list(STEPS)


def imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_flows_send_nothing_by_hand() -> None:
    python = imported_modules(PYTHON_FLOW)
    assert not {m for m in python if m in HTTP_MODULES or m.split(".")[0] in HTTP_MODULES}
    assert {m for m in python if m.startswith(PACKAGE)}, "the flow must use the generated client"
    typescript = TS_FLOW.read_text()
    assert re.search(r"\bfetch\s*\(|XMLHttpRequest|node:https?\b", typescript) is None
    assert 'from "openapi-fetch"' in typescript


async def test_python_client_generated_from_live_schema_runs_the_flow(
    studio: LiveStudio, tmp_path: Path
) -> None:
    generated = await generate_python_client(studio.schema, tmp_path / "python")
    email, password = account()
    flow = await run(
        sys.executable,
        PYTHON_FLOW,
        studio.url,
        email,
        password,
        cwd=tmp_path,
        env={"PYTHONPATH": str(generated)},
    )
    typed = await mypy_strict(generated, PYTHON_FLOW, cache=tmp_path / "mypy-cache")
    failed = [step.report() for step in (flow, typed) if step.returncode != 0]
    assert not failed, "\n\n".join(failed)
    assert_every_step(flow.stdout)
    # The downstream saw the wildcard's two segments and the query as the client sent them.
    assert [r.path for r in studio.zen.calls("/chat")] == ["/chat", "/chat/history"]
    assert studio.zen.calls("/chat/history")[0].query == "q=hello+world&limit=2"


async def test_typescript_client_generated_from_live_schema_runs_the_flow(
    studio: LiveStudio, tmp_path: Path
) -> None:
    compiled = await build_ts_flow(studio.schema, TS_FLOW, tmp_path / "typescript")
    email, password = account()
    flow = await run("node", compiled, studio.url, email, password, cwd=tmp_path)
    assert flow.returncode == 0, flow.report()
    assert_every_step(flow.stdout)
    assert [r.path for r in studio.zen.calls("/chat")] == ["/chat", "/chat/history"]
    assert studio.zen.calls("/chat/history")[0].query == "q=hello%20world&limit=2"
