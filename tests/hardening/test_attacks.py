"""Hostile input beyond the cases of tests/auth and tests/proxy: always 4xx, never 500."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app.auth import passwords
from app.auth.models import User
from app.main import create_app
from tests.gateway.conftest import PASSWORD as SERVICE_PASSWORD
from tests.hardening.conftest import (
    ACCOUNT_PASSWORD,
    API,
    LogCapture,
    assert_error,
    login,
    user,
)
from tests.harness.servers import RedisServer
from tests.support import live_server

pytestmark = [pytest.mark.services]
SQL = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "1; SELECT pg_sleep(5)--",
    "%' UNION SELECT password_hash FROM users --",
    "\\'; --",
    "$$; DROP TABLE audit_events; $$",
]
HOSTILE = [*SQL, "\x00", "nul\x00inside", "\u202e\u0000\ud7ff", "💥" * 40, "\r\nX-Injected: 1"]
JSON_ROUTES = [
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/password"),
    ("patch", "/admin/users/00000000-0000-0000-0000-000000000000"),
    ("post", "/admin/roles"),
    ("put", "/admin/roles/viewer"),
]


def _no_5xx(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert set(r.json()) == {"success", "message", "error", "result"}


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"email": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"email": "a@example.com", "password": NaN}',
        b"\xef\xbb\xbf{}",
        b'{"email": "\\ud800@example.com", "password": "x"}',
        b"\xff\xfe\x00{",
        b'{"email": "a@example.com",',
        b"null",
        b'"just a string"',
        b"[]",
        b"1e999999",
    ],
    ids=lambda b: repr(b[:12]),
)
async def test_malformed_and_deeply_nested_json_is_4xx(
    studio: Callable[..., Any], method: str, path: str, body: bytes
) -> None:
    async with studio() as (client, state):
        _, headers = await user(client, state, "admin")
        r = await client.request(
            method.upper(),
            f"{API}{path}",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        _no_5xx(r)


async def test_oversized_chunked_json_is_413(studio: Callable[..., Any]) -> None:
    async def chunks() -> Any:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(300):
            yield b"p" * 8192
        yield b'"}'

    async with studio() as (client, _):
        r = await client.post(
            f"{API}/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")


async def test_huge_headers_through_a_real_server_are_431(
    make_settings: Callable[..., Any],
) -> None:
    async with (
        live_server(create_app(make_settings())) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        many = {f"x-filler-{i}": "v" * 200 for i in range(100)}
        r = await http.get(f"{API}/health", headers=many)
        assert_error(r, 431, "HEADERS_TOO_LARGE")
        assert (await http.get(f"{API}/health")).status_code == 200


async def test_crlf_in_headers_never_splits_the_response(
    make_settings: Callable[..., Any],
) -> None:
    async with live_server(create_app(make_settings())) as base:
        port = int(base.rsplit(":", 1)[1])
        for raw_id in (b"abc\rSet-Cookie: evil=1", b"abc%0d%0aSet-Cookie:%20evil=1"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: "
                + raw_id
                + b"\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            head = answer.split(b"\r\n\r\n", 1)[0].lower()
            assert b"set-cookie" not in head, head
            assert b"evil" not in head, head


async def test_crlf_in_proxied_path_and_query_is_not_a_header(
    studio: Callable[..., Any], fake_services: dict[str, Any]
) -> None:
    async with studio() as (client, state):
        _, headers = await user(client, state, "admin")
        r = await client.get(
            f"{API}/zen/echo%0d%0aX-Injected:%201?q=a%0d%0aX-Injected:%202", headers=headers
        )
        assert r.status_code < 500
        assert "x-injected" not in r.headers
        for call in fake_services["zen"].calls("echo"):
            assert "x-injected" not in {k.lower() for k in call.headers}


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
async def test_sql_metacharacters_unicode_and_nul_in_every_string_field(
    studio: Callable[..., Any], value: str
) -> None:
    async with studio() as (client, state):
        _, admin = await user(client, state, "admin")
        email = f"sql-{uuid.uuid4().hex[:8]}@example.com"
        calls = [
            ("POST", "/auth/register", {"email": email, "password": "p" * 9, "full_name": value}),
            ("POST", "/auth/register", {"email": value, "password": "p" * 9}),
            ("POST", "/auth/register", {"email": f"{value}@example.com", "password": "p" * 9}),
            ("POST", "/auth/register", {"email": f"x{uuid.uuid4().hex}@e.com", "password": value}),
            ("POST", "/auth/login", {"email": value, "password": value}),
            ("POST", "/auth/login", {"email": email, "password": value}),
            ("POST", "/auth/password", {"current_password": value, "new_password": value}),
            ("POST", "/admin/roles", {"name": value, "permissions": [value]}),
            ("PUT", f"/admin/roles/{quote(value, safe='')}", {"permissions": [value]}),
            ("PATCH", f"/admin/users/{quote(value, safe='')}", {"roles": [value]}),
            ("DELETE", f"/auth/sessions/{quote(value, safe='')}", None),
        ]
        failures = []
        for method, path, body in calls:
            r = await client.request(method, f"{API}{path}", json=body, headers=admin)
            if r.status_code >= 500:
                failures.append((method, path, r.status_code))
        q = quote(value, safe="")
        for path in (
            f"/admin/users?email={q}&role={q}",
            f"/admin/audit?actor={q}&action={q}&cursor={q}",
            f"/admin/audit?since={q}&until={q}",
            f"/discovery/services/{q}/health",
            f"/zen/echo?q={q}",
        ):
            r = await client.get(f"{API}{path}", headers=admin)
            if r.status_code >= 500:
                failures.append(("GET", path, r.status_code))
        assert failures == []
        form = {"username": value, "password": value, "grant_type": "password"}
        r = await client.post(f"{API}/auth/token", data=form)
        assert r.status_code in (400, 422, 429), r.text
        # Nothing was dropped or rewritten by an injection: the tables still answer.
        assert (await client.get(f"{API}/admin/users", headers=admin)).status_code == 200
        assert (await client.get(f"{API}/admin/audit", headers=admin)).status_code == 200


async def test_mass_assignment_a_user_cannot_grant_itself(studio: Callable[..., Any]) -> None:
    async with studio() as (client, state):
        _, headers = await user(client, state)
        me = (await client.get(f"{API}/auth/me", headers=headers)).json()["result"]
        own = f"{API}/admin/users/{me['id']}"
        assert_error(
            await client.patch(own, json={"roles": ["admin"], "is_active": True}, headers=headers),
            403,
            "FORBIDDEN",
        )
        for method in ("PATCH", "PUT", "POST"):
            r = await client.request(
                method, f"{API}/auth/me", json={"roles": ["admin"]}, headers=headers
            )
            assert r.status_code in (404, 405), r.text
        assert_error(
            await client.post(
                f"{API}/admin/roles", json={"name": "mine", "permissions": ["*"]}, headers=headers
            ),
            403,
            "FORBIDDEN",
        )
        after = (await client.get(f"{API}/auth/me", headers=headers)).json()["result"]
        assert after["roles"] == ["viewer"] and "*" not in after["permissions"]


async def test_login_does_the_same_work_for_unknown_emails_and_wrong_passwords(
    studio: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What makes the two indistinguishable by timing: each verifies exactly one hash, and the
    # stand-in for an unknown email costs what a stored one does (same scheme and parameters).
    async with studio() as (client, state):
        email, _ = await user(client, state)
        verified: list[str] = []
        real_verify = passwords.verify_password

        async def recording(password: str, stored_hash: str) -> tuple[bool, str | None]:
            verified.append(stored_hash)
            return await real_verify(password, stored_hash)

        monkeypatch.setattr(passwords, "verify_password", recording)
        for who in (email, f"nobody-{uuid.uuid4().hex[:6]}@example.com"):
            assert_error(await login(client, who, "wrong-password-123"), 401, "INVALID_CREDENTIALS")
        assert len(verified) == 2, verified
        stored, stand_in = verified
        async with state["sessions"]() as db:
            row = (await db.execute(select(User).where(User.email == email))).scalar_one()
        assert stored == row.password_hash
        assert stand_in != stored

        def cost(hashed: str) -> str:
            return hashed.rsplit("$", 2)[0]  # `$argon2id$v=19$m=...,t=...,p=...`: no salt or digest

        assert cost(stand_in) == cost(stored) and stored.startswith("$argon2id$")


async def test_secrets_absent_from_logs_through_faults(
    studio: Callable[..., Any], tmp_path: Any
) -> None:
    redis_password = f"redis-pw-{uuid.uuid4().hex}"
    with RedisServer(None, "--requirepass", redis_password) as server:
        url = f"redis://:{redis_password}@127.0.0.1:{server.port}/0"
        log_dir = tmp_path / "fault-logs"
        async with studio(redis_url=url, log_dir=log_dir, log_level="DEBUG") as (client, state):
            with LogCapture() as captured:  # after Studio set up its own sinks
                email, headers = await user(client, state, "admin")
                tokens = (await login(client, email)).json()["result"]
                await client.get(f"{API}/zen/echo", headers=headers)
                await client.get(f"{API}/zen/status/500", headers=headers)
                server.stop()
                await client.get(f"{API}/auth/me", headers=headers)
                await login(client, email)
                await client.get(f"{API}/health")
                server.start()
                check = Redis.from_url(url)
                await check.ping()
                await check.aclose()
        settings = state["settings"]
    error_log = log_dir / "error.log"
    assert error_log.exists()
    text = captured.text + "\n" + error_log.read_text()
    assert "DEPENDENCY_UNAVAILABLE" in text or "unavailable" in text.lower()
    for secret in (
        redis_password,
        ACCOUNT_PASSWORD,
        SERVICE_PASSWORD,
        settings.jwt_secret,
        tokens["access_token"],
        tokens["refresh_token"],
        headers["Authorization"].split()[1],
    ):
        assert secret not in text, f"a secret leaked into the logs: {secret[:6]}..."
