"""Every proxied and aggregated downstream call records its duration and its errors."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from tests.gateway.conftest import account

API = "/api/v1"
DURATION = "studio_downstream_duration_seconds_count"
ERRORS = "studio_downstream_errors_total"


def calls(service: str) -> float:
    return REGISTRY.get_sample_value(DURATION, {"service": service}) or 0.0


def errors(service: str, kind: str) -> float:
    return REGISTRY.get_sample_value(ERRORS, {"service": service, "kind": kind}) or 0.0


async def test_a_proxied_call_records_its_duration(gateway: Any) -> None:
    async with gateway() as (client, state):
        viewer = await account(client, state)
        before = calls("zen")
        for _ in range(3):
            assert (await client.get(f"{API}/zen/anything", headers=viewer)).status_code == 200
        assert calls("zen") - before == 3
        text = (await client.get("/metrics")).text
    assert 'studio_downstream_duration_seconds_count{service="zen"}' in text


async def test_a_refused_proxied_call_records_an_error(gateway: Any) -> None:
    async with gateway(down=("zen",)) as (client, state):
        viewer = await account(client, state)
        before = errors("zen", "unavailable")
        r = await client.get(f"{API}/zen/anything", headers=viewer)
        assert r.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert errors("zen", "unavailable") - before == 1


async def test_a_dashboard_call_records_every_source(gateway: Any) -> None:
    async with gateway(down=("ingestion",)) as (client, state):
        viewer = await account(client, state)
        sources = ("nexus", "zen", "agents")
        before = {name: calls(name) for name in sources}
        failed = errors("ingestion", "unavailable")
        r = await client.get(f"{API}/dashboard", headers=viewer)
        assert r.status_code == 200
        assert {name: calls(name) - before[name] for name in sources} == dict.fromkeys(sources, 1)
        assert errors("ingestion", "unavailable") - failed == 1
