"""The whole app: a downstream's CORS and security headers never replace Studio's own."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.edge import API_CSP
from tests.gateway.conftest import account
from tests.proxy.test_spoofed_headers import policy_downstream
from tests.support import live_server

APP_ORIGIN = "https://app.example"


async def test_studio_policy_applies_to_proxied_answers(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with live_server(policy_downstream) as url:
        running = gateway(cors_allow_origins=[APP_ORIGIN])
        monkeypatch.setenv("ZEN_URL", url)  # read when the app starts, below
        async with running as (client, state):
            auth = await account(client, state, "admin")
            foreign = await client.get(
                "/api/v1/zen/page", headers={**auth, "Origin": "https://evil.example"}
            )
            own = await client.get("/api/v1/zen/page", headers={**auth, "Origin": APP_ORIGIN})
    for r in (foreign, own):
        assert r.status_code == 200, r.text
        assert r.headers["x-downstream"] == "kept"
        assert r.headers["content-security-policy"] == API_CSP[1].decode()
        assert "content-security-policy-report-only" not in r.headers
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in r.headers  # plain HTTP: Studio sends none
        assert "access-control-allow-headers" not in r.headers
    assert "access-control-allow-origin" not in foreign.headers
    assert own.headers["access-control-allow-origin"] == APP_ORIGIN
