"""Login and register limits over HTTP: 429 envelope, headers, per IP, per email, proxies."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.auth.helpers import AUTH, PASSWORD, assert_error, assert_ok, new_email, register, running

pytestmark = pytest.mark.services
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@asynccontextmanager
async def studio(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as (client, _):
        yield client


async def _login(
    client: httpx.AsyncClient, email: str, password: str = "wrong password", ip: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else None
    return await client.post(
        f"{AUTH}/login", json={"email": email, "password": password}, headers=headers
    )


def _rate_headers(response: httpx.Response) -> dict[str, int]:
    values = {name: response.headers[name] for name in RATE_HEADERS}
    for name, value in values.items():
        assert value.isdigit(), (name, value)
    return {name: int(value) for name, value in values.items()}


def _assert_limited(response: httpx.Response, limit: int, window: int) -> None:
    body = assert_error(response, 429, "RATE_LIMITED")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= window
    headers = _rate_headers(response)
    assert headers["ratelimit-limit"] == limit
    assert headers["ratelimit-remaining"] == 0
    assert 0 <= headers["ratelimit-reset"] <= window
    assert body["error"]["details"] == {"retry_after": int(retry_after)}
    assert response.headers["cache-control"] == "no-store"


async def test_login_limited_per_ip(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_login_attempts=3, rate_limit_login_window=60)
    async with studio(settings) as client:
        user = await register(client)
        remaining = []
        for _ in range(3):
            response = await _login(client, new_email("spray"))
            assert_error(response, 401, "INVALID_CREDENTIALS")
            headers = _rate_headers(response)
            assert headers["ratelimit-limit"] == 3
            remaining.append(headers["ratelimit-remaining"])
        assert remaining == [2, 1, 0]
        # Over the limit, even the right password is refused before it is checked.
        _assert_limited(await _login(client, user["email"], PASSWORD), 3, 60)
        _assert_limited(await _login(client, new_email("spray")), 3, 60)


async def test_login_limited_per_email_across_ips(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        rate_limit_login_attempts=3, rate_limit_login_window=60, trusted_proxies="127.0.0.1"
    )
    async with studio(settings) as client:
        user = await register(client)
        for i in range(3):
            response = await _login(client, user["email"], ip=f"203.0.113.{i + 1}")
            assert_error(response, 401, "INVALID_CREDENTIALS")
        # A fourth address, the same account: limited, and the right password does not help.
        _assert_limited(await _login(client, user["email"], PASSWORD, ip="203.0.113.50"), 3, 60)
        # Case and whitespace do not make it another account.
        variant = f"  {user['email'].upper()} "
        _assert_limited(await _login(client, variant, PASSWORD, ip="203.0.113.51"), 3, 60)
        # Another account from a fresh address is not affected.
        assert_error(
            await _login(client, new_email("other"), ip="203.0.113.60"), 401, "INVALID_CREDENTIALS"
        )


async def test_successful_logins_count_too(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=60)
    async with studio(settings) as client:
        user = await register(client)
        for _ in range(2):
            assert_ok(await _login(client, user["email"], PASSWORD))
        _assert_limited(await _login(client, user["email"], PASSWORD), 2, 60)


async def test_login_window_reopens(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=1)
    async with studio(settings) as client:
        user = await register(client)
        for _ in range(2):
            await _login(client, user["email"])
        _assert_limited(await _login(client, user["email"], PASSWORD), 2, 1)
        await asyncio.sleep(1.1)
        assert_ok(await _login(client, user["email"], PASSWORD))


async def test_concurrent_logins_let_exactly_the_limit_through(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_login_attempts=5, rate_limit_login_window=60)
    async with studio(settings) as client:
        responses = await asyncio.gather(*(_login(client, new_email()) for _ in range(20)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {401: 5, 429: 15}, statuses


async def test_ip_and_email_limits_agree_on_which_attempts_pass(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One attacker, one account, 4N concurrent attempts: exactly N must be let through, even
    # when the IP and the email counters see the attempts in a different order (two workers
    # with different latencies to Redis). Here the email hits arrive in reverse order.
    settings = make_settings(rate_limit_login_attempts=5, rate_limit_login_window=60)
    async with running(settings) as (client, state):
        limiter = state["rate_limiter"]
        real_hit = limiter.hit
        order = itertools.count()
        position: contextvars.ContextVar[int] = contextvars.ContextVar("position")

        async def reordering_hit(bucket: str, key: str, *, limit: int, window: int) -> Any:
            if bucket == "login-ip":
                position.set(next(order))
            elif bucket == "login-email":
                await asyncio.sleep((20 - position.get()) * 0.01)
            return await real_hit(bucket, key, limit=limit, window=window)

        monkeypatch.setattr(limiter, "hit", reordering_hit)
        email = new_email("target")
        responses = await asyncio.gather(*(_login(client, email) for _ in range(20)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {401: 5, 429: 15}, statuses


async def test_token_endpoint_shares_the_login_limit(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=60)
    async with studio(settings) as client:
        email = new_email("form")
        for _ in range(2):
            response = await client.post(
                f"{AUTH}/token", data={"username": email, "password": "wrong password"}
            )
            assert response.status_code == 400
        limited = await client.post(
            f"{AUTH}/token", data={"username": email, "password": "wrong password"}
        )
        assert limited.status_code == 429
        assert limited.headers["retry-after"].isdigit()
        _rate_headers(limited)
        assert_error(await _login(client, new_email()), 429, "RATE_LIMITED")


async def test_register_limited_per_ip(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_register_attempts=2, rate_limit_register_window=3600)
    async with studio(settings) as client:
        first = await client.post(
            f"{AUTH}/register", json={"email": new_email(), "password": PASSWORD}
        )
        assert_ok(first, 201)
        assert _rate_headers(first) == {
            "ratelimit-limit": 2,
            "ratelimit-remaining": 1,
            "ratelimit-reset": 3600,
        }
        # A refused registration (bad input is not counted: it never reaches the limiter).
        bad = await client.post(f"{AUTH}/register", json={"email": "nope", "password": PASSWORD})
        assert_error(bad, 422, "VALIDATION_ERROR")
        second = await client.post(
            f"{AUTH}/register", json={"email": new_email(), "password": PASSWORD}
        )
        assert_ok(second, 201)
        assert _rate_headers(second)["ratelimit-remaining"] == 0
        email = new_email("late")
        third = await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD})
        _assert_limited(third, 2, 3600)
        # Refused before anything was created.
        login = await _login(client, email, PASSWORD)
        assert_error(login, 401, "INVALID_CREDENTIALS")


async def test_forwarded_for_ignored_without_trusted_proxies(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_login_attempts=2, rate_limit_login_window=60)
    async with studio(settings) as client:
        for i in range(2):
            await _login(client, new_email(), ip=f"198.51.100.{i + 1}")
        # A new X-Forwarded-For from an untrusted peer is no new client.
        _assert_limited(await _login(client, new_email(), ip="198.51.100.99"), 2, 60)


async def test_forwarded_for_ignored_when_peer_is_not_trusted(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_login_attempts=2, rate_limit_login_window=60, trusted_proxies="10.0.0.0/8"
    )
    async with studio(settings) as client:
        for i in range(2):
            await _login(client, new_email(), ip=f"198.51.100.{i + 1}")
        _assert_limited(await _login(client, new_email(), ip="198.51.100.99"), 2, 60)


async def test_forwarded_for_honoured_from_trusted_proxy(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_login_attempts=2,
        rate_limit_login_window=60,
        trusted_proxies="127.0.0.1,10.0.0.0/8",
    )
    async with studio(settings) as client:
        for _ in range(2):
            assert_error(
                await _login(client, new_email(), ip="198.51.100.1"), 401, "INVALID_CREDENTIALS"
            )
        _assert_limited(await _login(client, new_email(), ip="198.51.100.1"), 2, 60)
        # Another client behind the same proxy has its own budget.
        assert_error(
            await _login(client, new_email(), ip="198.51.100.2"), 401, "INVALID_CREDENTIALS"
        )
        # Trusted hops are skipped: the rightmost untrusted address is the client.
        _assert_limited(await _login(client, new_email(), ip="198.51.100.1, 10.1.2.3"), 2, 60)
        # A spoofed left-most entry does not escape: the proxy appended the real address.
        _assert_limited(await _login(client, new_email(), ip="192.0.2.77, 198.51.100.1"), 2, 60)


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/login", {"email": "a@example.com", "password": "whatever-1"}),
        ("POST", "/register", {"email": "b@example.com", "password": "whatever-1"}),
    ],
)
async def test_fail_closed_when_redis_is_down(
    make_settings: Callable[..., Settings], method: str, path: str, payload: dict[str, Any]
) -> None:
    async with studio(make_settings(redis_url="redis://127.0.0.1:1/0")) as client:
        response = await client.request(method, f"{AUTH}{path}", json=payload)
        body = assert_error(response, 503, "DEPENDENCY_UNAVAILABLE")
        assert "127.0.0.1:1" not in response.text and "refused" not in body["message"].lower()
