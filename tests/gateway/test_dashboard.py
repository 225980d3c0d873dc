"""Dashboard: concurrent sources, partial results, permission and cache."""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeService
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


async def _email(client: Any, headers: dict[str, str]) -> str:
    r = await client.get(f"{API}/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["result"]["email"])


def _calls_for(service: FakeService, email: str) -> int:
    """Dashboard calls the fake received on behalf of the user with `email`."""
    return len([c for c in service.calls() if c.headers.get("x-user-email") == email])


async def test_a_source_the_caller_may_not_read_is_refused_and_never_fetched(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    async with gateway() as (client, state):
        await make_role(state, "dash-documents", ["dashboard:read", "nexus:read"])
        reader = await account(client, state, "dash-documents")
        email = await _email(client, reader)
        r = await client.get(f"{API}/dashboard", headers=reader)
        assert r.status_code == 200
        sources = r.json()["result"]["sources"]
        assert sources["documents"]["ok"] is True
        for key in ("chat", "agents", "ingestion"):
            assert sources[key] == {"ok": False, "error": "FORBIDDEN"}, key
        assert _calls_for(fake_services["nexus"], email) == 1
        for name in ("zen", "agents", "ingestion"):
            assert _calls_for(fake_services[name], email) == 0, name


async def test_the_cache_never_answers_one_user_with_another_users_page(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    async with gateway() as (client, state):
        analyst = await account(client, state, "analyst")  # may read every source
        analyst_email = await _email(client, analyst)
        full = (await client.get(f"{API}/dashboard", headers=analyst)).json()["result"]
        assert all(slot["ok"] for slot in full["sources"].values())
        # The complete page is cached: the analyst's second look asks no downstream.
        again = (await client.get(f"{API}/dashboard", headers=analyst)).json()["result"]
        assert again == full
        assert _calls_for(fake_services["nexus"], analyst_email) == 1

        await make_role(state, "dash-documents", ["dashboard:read", "nexus:read"])
        reader = await account(client, state, "dash-documents")
        reader_email = await _email(client, reader)
        r = await client.get(f"{API}/dashboard", headers=reader)
        sources = r.json()["result"]["sources"]
        for key in ("chat", "agents", "ingestion"):
            assert sources[key] == {"ok": False, "error": "FORBIDDEN"}, key
        documents = sources["documents"]["data"]
        assert dict(documents["headers"])["x-user-email"] == reader_email
        assert _calls_for(fake_services["nexus"], reader_email) == 1


async def test_a_page_with_a_failed_source_is_not_cached(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    """Only complete pages are cached: a source that recovers shows on the next look."""
    nexus = fake_services["nexus"]
    expected = nexus.password
    async with gateway() as (client, state):
        analyst = await account(client, state, "analyst")
        nexus.set_password("rotated-elsewhere")  # Studio's credentials now fail at nexus
        try:
            first = (await client.get(f"{API}/dashboard", headers=analyst)).json()["result"]
            assert first["sources"]["documents"]["ok"] is False
            assert first["sources"]["chat"]["ok"] is True
        finally:
            nexus.set_password(expected)
        second = (await client.get(f"{API}/dashboard", headers=analyst)).json()["result"]
        assert second["sources"]["documents"]["ok"] is True
