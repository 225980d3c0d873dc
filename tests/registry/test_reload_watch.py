"""`SERVICE_CONFIG_RELOAD_INTERVAL`: each worker reloads when the registry files' content
changes; a broken edit is rejected and the loaded registry keeps serving."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.core.config import Settings
from tests.auth.helpers import running
from tests.conftest import ROOT
from tests.support import wait_until

API = "/api/v1"


async def _registry(client: httpx.AsyncClient) -> dict[str, Any]:
    body = (await client.get(f"{API}/health")).json()
    registry: dict[str, Any] = body["result"]["checks"]["registry"]
    return registry


async def test_a_changed_file_is_served_and_a_broken_edit_keeps_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    base = tmp_path / "services.yaml"
    shutil.copy(ROOT / "config" / "services.yaml", base)
    settings = make_settings(service_config_path=base, service_config_reload_interval=0.05)
    async with running(settings) as (client, state):
        live = state["registry"]
        first = live.current.version
        assert (await _registry(client))["version"] == first

        base.write_text(base.read_text() + "\n# a comment changes the content hash\n")
        await wait_until(lambda: live.current.version != first, what="the edit served")
        second = live.current.version
        assert (await _registry(client))["version"] == second

        good = base.read_text()
        base.write_text(good.replace("services:", "services: [", 1))
        await wait_until(
            lambda: live.last_attempt is not None and live.last_attempt.outcome == "rejected",
            what="the broken edit rejected",
        )
        assert live.current.version == second  # the loaded registry keeps serving
        assert (await _registry(client))["version"] == second

        base.write_text(good)
        # The same content as the one serving: nothing to swap.
        await wait_until(
            lambda: live.last_attempt.outcome == "unchanged", what="the fix seen as unchanged"
        )
        assert live.current.version == second
