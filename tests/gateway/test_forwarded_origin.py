"""X-Forwarded-Host/-Proto sent downstream: from PUBLIC_BASE_URL, else from a trusted proxy's
validated headers, else absent; never from an untrusted client's Host or headers.

The whole app (real auth, PostgreSQL, Redis) in front of the fake Zen on loopback; the test
client's address is 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.server import FakeService
from tests.gateway.conftest import account

CLIENT_CLAIMS = {
    "Host": "evil.example",
    "X-Forwarded-Host": "spoofed.example",
    "X-Forwarded-Proto": "https",
}


async def received(gateway: Any, zen: FakeService, headers: dict[str, str], **settings: Any) -> Any:
    async with gateway(**settings) as (client, state):
        auth = await account(client, state, "admin")
        zen.reset()
        r = await client.get("/api/v1/zen/whoami", headers={**auth, **headers})
        assert r.status_code == 200, r.text
    [call] = zen.calls("/whoami")
    return call.headers


async def test_untrusted_client_states_nothing(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    seen = await received(gateway, fake_services["zen"], CLIENT_CLAIMS)
    assert "x-forwarded-host" not in seen
    assert "x-forwarded-proto" not in seen
    assert "evil.example" not in seen.values()


async def test_public_base_url_is_what_downstreams_are_told(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    for trusted in ([], ["127.0.0.1"]):  # it wins over a trusted proxy's headers too
        seen = await received(
            gateway,
            fake_services["zen"],
            CLIENT_CLAIMS,
            public_base_url="https://studio.example.com",
            trusted_proxies=trusted,
        )
        assert seen["x-forwarded-host"] == "studio.example.com"
        assert seen["x-forwarded-proto"] == "https"


@pytest.mark.parametrize(
    ("proxy_says", "host", "proto"),
    [
        ({"X-Forwarded-Host": "public.example:8443", "X-Forwarded-Proto": "https"},
         "public.example:8443", "https"),
        # An appending proxy: its own value is the last one.
        ({"X-Forwarded-Host": "spoofed.example, public.example",
          "X-Forwarded-Proto": "http, https"},
         "public.example", "https"),
        ({"X-Forwarded-Host": "[2001:db8::1]:443", "X-Forwarded-Proto": "HTTPS"},
         "[2001:db8::1]:443", "https"),
        ({"X-Forwarded-Host": "evil.example/path", "X-Forwarded-Proto": "javascript"}, None, None),
        ({"X-Forwarded-Host": "a b", "X-Forwarded-Proto": ""}, None, None),
        ({"X-Forwarded-Host": "x.example:99999"}, None, None),
        ({"X-Forwarded-Host": "user@evil.example"}, None, None),
        ({}, None, None),
    ],
)  # fmt: skip
async def test_trusted_proxy_headers_are_validated(
    gateway: Any,
    fake_services: dict[str, FakeService],
    proxy_says: dict[str, str],
    host: str | None,
    proto: str | None,
) -> None:
    seen = await received(
        gateway,
        fake_services["zen"],
        {"Host": "evil.example", **proxy_says},
        trusted_proxies=["127.0.0.1"],
    )
    assert seen.get("x-forwarded-host") == host
    assert seen.get("x-forwarded-proto") == proto
