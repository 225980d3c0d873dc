"""The session cache's hits and misses reach /metrics, so operators can chart its hit ratio."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.auth.helpers import AUTH, account, bearer


def lookups(exposition: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "studio_session_cache_lookups":
                found[sample.labels["result"]] = sample.value
    return found


async def test_session_checks_are_counted_as_hits_and_misses(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    assert state["session_store"].cache is not None, "the suite runs with the session cache on"
    _, pair = await account(client)
    headers = bearer(pair["access_token"])
    before = lookups((await client.get("/metrics")).text)
    for _ in range(5):
        assert (await client.get(f"{AUTH}/me", headers=headers)).status_code == 200
    after = lookups((await client.get("/metrics")).text)
    # The first check of the session reads Redis; the ones after it are answered by the cache.
    assert after["miss"] - before.get("miss", 0) >= 1
    assert after["hit"] - before.get("hit", 0) >= 3
    assert sum(after.values()) - sum(before.values()) == 5
