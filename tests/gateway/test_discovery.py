"""Discovery: which services a caller may use, their health, and the background checker."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway.conftest import account, make_role

API = "/api/v1"


async def test_services_are_listed_by_permission(gateway: Any) -> None:
    async with gateway() as (client, state):
        viewer = await account(client, state)
        admin = await account(client, state, "admin")
        await make_role(state, "chat-only", ["zen:chat"])
        chatter = await account(client, state, "chat-only")

        seen = (await client.get(f"{API}/discovery/services", headers=viewer)).json()["result"]
        assert {s["name"] for s in seen} == {"nexus", "zen", "agents", "ingestion"}
        nexus = next(s for s in seen if s["name"] == "nexus")
        assert nexus["mode"] == "explicit" and nexus["can_read"] and not nexus["can_write"]
        assert nexus["circuit"] == "closed" and nexus["path"] == "/api/v1/nexus"
        assert all(s["base_url"] is None for s in seen)  # internal addresses are for admins

        as_admin = (await client.get(f"{API}/discovery/services", headers=admin)).json()["result"]
        assert all(s["base_url"].startswith("http://127.0.0.1:") for s in as_admin)

        only = (await client.get(f"{API}/discovery/services", headers=chatter)).json()["result"]
        assert [s["name"] for s in only] == ["zen"]
        hidden = await client.get(f"{API}/discovery/services/nexus/health", headers=chatter)
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "SERVICE_NOT_FOUND"

        anonymous = await client.get(f"{API}/discovery/services")
        assert anonymous.status_code == 401


async def test_health_of_a_service_up_and_down(gateway: Any) -> None:
    async with gateway(down=("ingestion",)) as (client, state):
        viewer = await account(client, state)
        up = await client.get(f"{API}/discovery/services/zen/health", headers=viewer)
        assert up.status_code == 200
        health = up.json()["result"]
        assert health["service"] == "zen" and health["status"] == "up"
        assert health["http_status"] == 200 and health["latency_ms"] >= 0 and health["checked_at"]
        down = (
            await client.get(f"{API}/discovery/services/ingestion/health", headers=viewer)
        ).json()
        assert down["result"]["status"] == "down" and down["result"]["http_status"] is None
        assert "127.0.0.1" not in str(down)
        missing = await client.get(f"{API}/discovery/services/nope/health", headers=viewer)
        assert missing.status_code == 404


async def test_background_checker_feeds_readiness_and_stops(gateway: Any) -> None:
    async with gateway(
        down=("agents",), service_health_check_enabled=True, service_health_check_interval=0.1
    ) as (client, state):
        # Until the checker has looked at both (a generous bound: the machine may be slow).
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            services = (await client.get(f"{API}/health")).json()["result"]["checks"]["services"]
            if services["zen"]["status"] != "unknown" and services["agents"]["status"] != "unknown":
                break
            assert asyncio.get_running_loop().time() < deadline, services
            await asyncio.sleep(0.05)
        assert services["zen"] == {"status": "up", "circuit": "closed"}
        assert services["agents"]["status"] == "down"
        checker = state["health_checker"]
    assert checker._task is not None and checker._task.done()  # stopped with the app


async def test_metrics_count_proxied_requests_by_service(gateway: Any) -> None:
    async with gateway() as (client, state):
        viewer = await account(client, state)
        for _ in range(3):
            assert (await client.get(f"{API}/zen/anything", headers=viewer)).status_code == 200
        text = (await client.get("/metrics")).text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("studio_http_requests_total{")
        and 'route="/api/v1/zen/{path}"' in ln
        and 'status="200"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert 'studio_circuit_breaker_open{service="zen"} 0.0' in text
