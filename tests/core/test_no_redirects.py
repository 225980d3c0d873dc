"""No redirect of Studio's own: an unknown path, with or without a trailing slash, is a 404
envelope, never a 307 to a URL built from the client's Host (CONTRACT.md §2)."""

from __future__ import annotations

import httpx
import pytest

PATHS = [
    "/api/v1/zen",  # a service prefix without a tail
    "/api/v1/nexus",
    "/api/v1/auth/me/",  # a known route with an extra slash
    "/api/v1/discovery/services/",
    "/api/v1/health/",
    "/health/",
    "/api/v1/nowhere/",
    "/api/v1",
    "/api/v1/",
    "/nowhere",
]


@pytest.mark.parametrize("path", PATHS)
async def test_unknown_paths_are_404_envelopes_not_redirects(
    client: httpx.AsyncClient, path: str
) -> None:
    for method in ("GET", "POST"):
        r = await client.request(method, path, headers={"Host": "evil.example"})
        assert r.status_code == 404, (method, path, r.status_code, r.headers)
        assert "location" not in r.headers
        body = r.json()
        assert set(body) == {"success", "message", "error", "result"}
        assert body["success"] is False
        assert body["error"]["code"] in ("NOT_FOUND", "SERVICE_NOT_FOUND", "ROUTE_NOT_FOUND")
        assert "evil.example" not in r.text
        assert r.headers["x-request-id"]


async def test_known_routes_still_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/v1/auth/me")).status_code == 401
