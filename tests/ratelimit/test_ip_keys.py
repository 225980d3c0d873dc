"""Per-IP buckets: IPv4 by address, IPv6 by network (RATE_LIMIT_IPV6_PREFIX), mapped as IPv4."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from app.ratelimit.keys import client_key
from tests.auth.helpers import AUTH, PASSWORD, assert_error, new_email
from tests.support import StateApp


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("  203.0.113.7 ", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:0db8:0001:0002:0000:0000:0000:0001", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::FFFF", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::ffff:cb00:7107", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("fe80::2%2", "fe80::/64"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address, 64) == key


@pytest.mark.parametrize(
    ("prefix", "key"),
    [(48, "2001:db8:1::/48"), (56, "2001:db8:1:200::/56"), (128, "2001:db8:1:2ff::1/128")],
)
def test_client_key_prefix(prefix: int, key: str) -> None:
    assert client_key("2001:db8:1:2ff::1", prefix) == key
    # IPv4 ignores the IPv6 prefix.
    assert client_key("198.51.100.1", prefix) == "198.51.100.1"


@pytest.mark.parametrize(
    "garbage",
    ["", "unknown", "testclient", "1.2.3.4.5", "2001:db8::1::2", "1.2.3.4%eth0", "x" * 500],
)
def test_client_key_garbage_is_bounded(garbage: str) -> None:
    key = client_key(garbage, 64)
    assert isinstance(key, str) and 0 < len(key) <= 64
    # Deterministic: the same garbage is the same bucket.
    assert client_key(garbage, 64) == key


def test_client_key_garbage_never_collides_with_an_address() -> None:
    assert client_key("x" * 500, 64) != client_key("x" * 501, 64)
    assert client_key("unknown", 64) not in {client_key("0.0.0.0", 64), client_key("::", 64)}


@asynccontextmanager
async def studio_from(settings: Settings) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """The app for `settings`; the factory gives clients whose TCP peer is any address."""
    app = create_app(settings)
    clients: list[httpx.AsyncClient] = []
    async with app.router.lifespan_context(app) as raw:
        state = dict(raw or {})

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=StateApp(app, state), client=(address, 1234))
            made = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            clients.append(made)
            return made

        try:
            yield client
        finally:
            for made in clients:
                await made.aclose()


async def _login(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/login",
        json={"email": new_email("v6"), "password": "wrong password"},
        headers=headers,
    )


services = pytest.mark.services


@services
async def test_one_ipv6_network_shares_the_login_bucket(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=60)
    async with studio_from(settings) as client:
        for address in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
            assert_error(await _login(client(address)), 401, "INVALID_CREDENTIALS")
        # A third address of the same /64: the bucket is spent.
        assert_error(await _login(client("2001:db8:1:2:ffff::9")), 429, "RATE_LIMITED")
        # The neighbouring /64 and an IPv4 client have budgets of their own.
        assert_error(await _login(client("2001:db8:1:3::1")), 401, "INVALID_CREDENTIALS")
        assert_error(await _login(client("203.0.113.7")), 401, "INVALID_CREDENTIALS")


@services
async def test_mapped_ipv4_is_the_ipv4_bucket(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=60)
    async with studio_from(settings) as client:
        assert_error(await _login(client("203.0.113.7")), 401, "INVALID_CREDENTIALS")
        assert_error(await _login(client("::ffff:203.0.113.7")), 401, "INVALID_CREDENTIALS")
        assert_error(await _login(client("203.0.113.7")), 429, "RATE_LIMITED")


@services
async def test_forwarded_ipv6_clients_share_a_bucket_per_prefix(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_login_attempts=2,
        rate_limit_login_window=60,
        rate_limit_ipv6_prefix=56,
        trusted_proxies="10.0.0.0/8",
    )
    async with studio_from(settings) as client:
        proxy = client("10.0.0.1")
        for address in ("2001:db8:0:10::1", "2001:db8:0:ff::1"):  # one /56
            response = await _login(proxy, {"X-Forwarded-For": address})
            assert_error(response, 401, "INVALID_CREDENTIALS")
        limited = await _login(proxy, {"X-Forwarded-For": "2001:db8:0:aa:1::1"})
        assert_error(limited, 429, "RATE_LIMITED")
        other = await _login(proxy, {"X-Forwarded-For": "2001:db8:0:100::1"})
        assert_error(other, 401, "INVALID_CREDENTIALS")


@services
async def test_register_is_limited_per_ipv6_network(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_register_attempts=1, rate_limit_register_window=3600)
    async with studio_from(settings) as client:
        first = await client("2001:db8:5::1").post(
            f"{AUTH}/register", json={"email": new_email(), "password": PASSWORD}
        )
        assert first.status_code == 201, first.text
        second = await client("2001:db8:5::2").post(
            f"{AUTH}/register", json={"email": new_email(), "password": PASSWORD}
        )
        assert_error(second, 429, "RATE_LIMITED")
