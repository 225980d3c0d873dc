"""Dashboard: concurrent sources, partial results, permission and cache."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import account, make_role

API = "/api/v1"


async def test_all_sources_answer(gateway: Any) -> None:
    async with gateway() as (client, state):
        viewer = await account(client, state)
        r = await client.get(f"{API}/dashboard", headers={**viewer, "X-Request-ID": "dash-1"})
        assert r.status_code == 200
        sources = r.json()["result"]["sources"]
        assert set(sources) == {"documents", "chat", "agents", "ingestion"}
        assert all(slot["ok"] for slot in sources.values())
        documents = sources["documents"]["data"]
        assert documents["path"] == "/documents/stats"
        headers = dict(documents["headers"])
        assert headers["x-request-id"] == "dash-1"
        assert headers["authorization"].startswith("Basic ")  # the service's, not the user's
        assert headers["x-user-email"].startswith("gw-")


async def test_one_source_down_still_answers_200(gateway: Any) -> None:
    async with gateway(down=("ingestion",)) as (client, state):
        viewer = await account(client, state)
        r = await client.get(f"{API}/dashboard", headers=viewer)
        assert r.status_code == 200
        sources = r.json()["result"]["sources"]
        assert sources["ingestion"] == {"ok": False, "error": "UPSTREAM_UNAVAILABLE"}
        assert sources["documents"]["ok"] and sources["chat"]["ok"] and sources["agents"]["ok"]


async def test_dashboard_needs_its_permission(gateway: Any) -> None:
    async with gateway() as (client, state):
        analyst = await account(client, state, "analyst")  # analyst has dashboard:read
        assert (await client.get(f"{API}/dashboard", headers=analyst)).status_code == 200
        await make_role(state, "chat-only", ["zen:chat"])
        chatter = await account(client, state, "chat-only")
        denied = await client.get(f"{API}/dashboard", headers=chatter)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        assert (await client.get(f"{API}/dashboard")).status_code == 401
