"""Every error code the OpenAPI document lists for an operation of Studio's own is one its route
really answers, and every code driven through a route is documented there.

For each documented (operation, status, code) a scenario produces that code through the real
app (real PostgreSQL and Redis); what each answer carried is recorded, and the two sets must be
equal: a documented code no scenario can produce, or a produced one that is not documented,
fails. A code without a scenario fails too, so a new declaration needs a way to prove it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.auth import cookies, sessions
from app.core.config import Settings
from app.main import create_app
from tests.auth.helpers import (
    API,
    PASSWORD,
    assert_ok,
    bearer,
    fresh_claims,
    grant_roles,
    new_email,
    sign,
    update_user,
)
from tests.harness.servers import RedisServer
from tests.support import StateApp

pytestmark = pytest.mark.services

APP_ORIGIN = "http://app.example.com"
LIFETIME = 60  # the shortest session lifetime the settings accept
GRANT = 30  # the shortest access grant: a cookie session renews past it
BODY_LIMIT = 2048
SESSION = "studio_session"
CSRF = "studio_csrf"

Key = tuple[str, int, str]  # (operation id, status, code)


@dataclass
class Op:
    id: str
    method: str
    path: str  # the template, as documented

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Studio:
    """One running app: clients over it, and accounts made through its API."""

    app: Any
    state: dict[str, Any]
    stack: AsyncExitStack
    monkeypatch: pytest.MonkeyPatch
    admin: dict[str, str] = field(default_factory=dict)

    async def client(self) -> httpx.AsyncClient:
        """A client with a cookie jar of its own."""
        transport = httpx.ASGITransport(
            app=StateApp(self.app, self.state), client=("127.0.0.1", 50000)
        )
        return await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )

    async def account(self, roles: list[str] | None = None) -> str:
        """A new account (with `roles` instead of `viewer` when given); its email."""
        http = await self.client()
        email = new_email("codes")
        response = await http.post(
            f"{API}/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert_ok(response, 201)
        if roles is not None:
            await grant_roles(self.state, email, roles)
        return email

    async def tokens(self, roles: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        """A new account logged in with Bearer tokens: (email, token pair)."""
        email = await self.account(roles)
        http = await self.client()
        response = await http.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
        return email, assert_ok(response)

    async def cookie(
        self, roles: list[str] | None = None
    ) -> tuple[str, httpx.AsyncClient, dict[str, str]]:
        """A new account logged in with a cookie session: (email, its client, the headers a
        write needs: Origin and X-CSRF-Token)."""
        email = await self.account(roles)
        http = await self.client()
        response = await http.post(
            f"{API}/auth/login",
            json={"email": email, "password": PASSWORD, "mode": "cookie"},
            headers={"Origin": APP_ORIGIN},
        )
        csrf = assert_ok(response)["csrf_token"]
        return email, http, {"Origin": APP_ORIGIN, "X-CSRF-Token": csrf}

    async def admin_headers(self) -> dict[str, str]:
        if not self.admin:
            _, pair = await self.tokens(["admin"])
            self.admin = bearer(pair["access_token"])
        return self.admin


@asynccontextmanager
async def studio(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> AsyncIterator[Studio]:
    settings = make_settings(
        **{
            "session_max_lifetime_seconds": LIFETIME,
            "jwt_access_token_expire_seconds": GRANT,
            "cors_allow_origins": [APP_ORIGIN],
            "max_json_body_bytes": BODY_LIMIT,
            "metrics_allow_cidrs": ["10.0.0.0/8"],  # not the test client's address
            "session_cache_seconds": 0,  # every request asks Redis
            **overrides,
        }
    )
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        raw = await stack.enter_async_context(app.router.lifespan_context(app))
        yield Studio(app, dict(raw or {}), stack, monkeypatch)


# A request each operation accepts once its caller is allowed (admin Bearer unless said).


async def valid(s: Studio, op: Op, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """`httpx` arguments of a well-formed request to `op`."""
    if headers is None and op.id in ("auth.logout", "auth.password.change"):
        headers = bearer((await s.tokens())[1]["access_token"])  # it ends sessions: not admin's
    h = dict(headers if headers is not None else await s.admin_headers())
    body: dict[str, Any] = {}
    match op.id:
        case "auth.register":
            body = {"json": {"email": new_email("codes"), "password": PASSWORD}}
        case "auth.login":
            body = {"json": {"email": new_email("nobody"), "password": PASSWORD}}
        case "auth.token":
            body = {"data": {"grant_type": "password", "username": "a@b.example", "password": "x"}}
        case "auth.password.change":
            body = {"json": {"current_password": PASSWORD, "new_password": PASSWORD + "!"}}
        case "admin.users.update":
            body = {"json": {"is_active": True}}
        case "admin.roles.create":
            body = {"json": {"name": f"r{uuid.uuid4().hex[:12]}", "permissions": []}}
        case "admin.roles.update":
            body = {"json": {"permissions": ["nexus:read"]}}
    return {"headers": h, **body}


def url(op: Op, **params: str) -> str:
    defaults = {"sid": "no-such-session", "user_id": str(uuid.uuid4()), "name": "zen"}
    path = op.path
    for name, value in {**defaults, **params}.items():
        path = path.replace(f"{{{name}}}", value)
    return path


async def send(client: httpx.AsyncClient, op: Op, path: str, **kwargs: Any) -> httpx.Response:
    return await client.request(op.method, path, **kwargs)


# Scenarios: how to make `op` answer a code. Each returns the response.

Scenario = Callable[[Studio, Op], Awaitable[httpx.Response]]


async def headers_too_large(s: Studio, op: Op) -> httpx.Response:
    kwargs = await valid(s, op)
    kwargs["headers"]["X-Padding"] = "a" * 20_000
    return await send(await s.client(), op, url(op), **kwargs)


async def payload_too_large(s: Studio, op: Op) -> httpx.Response:
    kwargs = await valid(s, op)
    kwargs.pop("json", None)
    kwargs.pop("data", None)
    kwargs["headers"]["Content-Type"] = "application/json"
    return await send(await s.client(), op, url(op), content=b" " * (BODY_LIMIT * 2), **kwargs)


async def validation_error(s: Studio, op: Op) -> httpx.Response:
    kwargs = await valid(s, op)
    if "json" in kwargs:
        kwargs["json"] = ["not", "an", "object"]
    elif "data" in kwargs:
        kwargs["data"] = {**kwargs["data"], "username": "u" * 400}
    else:
        kwargs["params"] = {"page": "0", "limit": "0"}
    return await send(await s.client(), op, url(op), **kwargs)


async def _bearer_call(s: Studio, op: Op, token: str | None) -> httpx.Response:
    kwargs = await valid(s, op, bearer(token) if token else {})
    return await send(await s.client(), op, url(op), **kwargs)


async def unauthorized(s: Studio, op: Op) -> httpx.Response:
    return await _bearer_call(s, op, None)


async def token_invalid(s: Studio, op: Op) -> httpx.Response:
    return await _bearer_call(s, op, "not-a-token")


def _kind(op: Op) -> str:
    return "refresh_token" if op.id == "auth.refresh" else "access_token"


async def token_expired(s: Studio, op: Op) -> httpx.Response:
    _, pair = await s.tokens()
    now = int(time.time())
    claims = fresh_claims(pair[_kind(op)], iat=now - 120, nbf=now - 120, exp=now - 60)
    return await _bearer_call(s, op, sign(claims))


async def session_revoked(s: Studio, op: Op) -> httpx.Response:
    _, pair = await s.tokens(["admin"])
    http = await s.client()
    assert_ok(await http.post(f"{API}/auth/logout", headers=bearer(pair["access_token"])))
    return await _bearer_call(s, op, pair[_kind(op)])


async def session_expired(s: Studio, op: Op) -> httpx.Response:
    if op.id == "auth.refresh":
        _, pair = await s.tokens()
        with s.monkeypatch.context() as m:
            m.setattr(sessions, "clock", lambda: time.time() + LIFETIME + 1)
            return await _bearer_call(s, op, pair["refresh_token"])
    _, http, write = await s.cookie(["admin"])
    kwargs = await valid(s, op, write if op.writes else {})
    with s.monkeypatch.context() as m:
        m.setattr(sessions, "clock", lambda: time.time() + LIFETIME + 1)
        m.setattr(cookies, "clock", lambda: time.time() + LIFETIME + 1)
        return await send(http, op, url(op), **kwargs)


async def account_disabled(s: Studio, op: Op) -> httpx.Response:
    if op.id in ("auth.login", "auth.refresh"):
        email, pair = await s.tokens()
        await update_user(s.state, email, is_active=False)
        if op.id == "auth.refresh":
            return await _bearer_call(s, op, pair["refresh_token"])
        return await (await s.client()).post(
            f"{API}/auth/login", json={"email": email, "password": PASSWORD}
        )
    email, http, write = await s.cookie(["admin"])
    await update_user(s.state, email, is_active=False)
    kwargs = await valid(s, op, write if op.writes else {})
    with s.monkeypatch.context() as m:
        m.setattr(cookies, "clock", lambda: time.time() + GRANT + 1)  # the grant renews
        return await send(http, op, url(op), **kwargs)


async def csrf_failed(s: Studio, op: Op) -> httpx.Response:
    if op.id == "auth.login":
        email = await s.account()
        return await (await s.client()).post(
            f"{API}/auth/login",
            json={"email": email, "password": PASSWORD, "mode": "cookie"},
            headers={"Origin": "http://evil.example"},
        )
    _, http, _ = await s.cookie(["admin"])
    kwargs = await valid(s, op, {"Origin": APP_ORIGIN})  # no X-CSRF-Token
    return await send(http, op, url(op), **kwargs)


async def forbidden(s: Studio, op: Op) -> httpx.Response:
    _, pair = await s.tokens(roles=[])
    return await _bearer_call(s, op, pair["access_token"])


async def not_found(s: Studio, op: Op) -> httpx.Response:
    if op.id == "auth.sessions.delete":
        _, pair = await s.tokens()
        return await _bearer_call(s, op, pair["access_token"])
    params = {"name": "no-such-role"} if op.id == "admin.roles.update" else {}
    return await send(await s.client(), op, url(op, **params), **await valid(s, op))


async def service_not_found(s: Studio, op: Op) -> httpx.Response:
    return await send(await s.client(), op, url(op, name="no-such-service"), **await valid(s, op))


async def conflict(s: Studio, op: Op) -> httpx.Response:
    kwargs = await valid(s, op)
    kwargs["json"]["name"] = "viewer"
    return await send(await s.client(), op, url(op), **kwargs)


async def email_taken(s: Studio, op: Op) -> httpx.Response:
    email = await s.account()
    return await (await s.client()).post(
        f"{API}/auth/register", json={"email": email, "password": PASSWORD}
    )


async def invalid_credentials(s: Studio, op: Op) -> httpx.Response:
    if op.id == "auth.password.change":
        _, pair = await s.tokens()
        kwargs = await valid(s, op, bearer(pair["access_token"]))
        kwargs["json"]["current_password"] = "not the password"
        return await send(await s.client(), op, url(op), **kwargs)
    email = await s.account()
    return await (await s.client()).post(
        f"{API}/auth/login", json={"email": email, "password": "not the password"}
    )


async def token_reused(s: Studio, op: Op) -> httpx.Response:
    _, pair = await s.tokens()
    assert_ok(await _bearer_call(s, op, pair["refresh_token"]))
    return await _bearer_call(s, op, pair["refresh_token"])


async def _token_form(s: Studio, form: dict[str, str]) -> httpx.Response:
    return await (await s.client()).post(f"{API}/auth/token", data=form)


async def invalid_request(s: Studio, op: Op) -> httpx.Response:
    return await _token_form(s, {"grant_type": "password", "username": "a@b.example"})


async def unsupported_grant_type(s: Studio, op: Op) -> httpx.Response:
    form = {"grant_type": "client_credentials", "username": "a@b.example", "password": "x"}
    return await _token_form(s, form)


async def invalid_grant(s: Studio, op: Op) -> httpx.Response:
    email = await s.account()
    return await _token_form(s, {"grant_type": "password", "username": email, "password": "no"})


SCENARIOS: dict[str, Scenario] = {
    "HEADERS_TOO_LARGE": headers_too_large,
    "PAYLOAD_TOO_LARGE": payload_too_large,
    "VALIDATION_ERROR": validation_error,
    "UNAUTHORIZED": unauthorized,
    "TOKEN_INVALID": token_invalid,
    "TOKEN_EXPIRED": token_expired,
    "SESSION_REVOKED": session_revoked,
    "SESSION_EXPIRED": session_expired,
    "ACCOUNT_DISABLED": account_disabled,
    "CSRF_FAILED": csrf_failed,
    "FORBIDDEN": forbidden,
    "NOT_FOUND": not_found,
    "SERVICE_NOT_FOUND": service_not_found,
    "CONFLICT": conflict,
    "EMAIL_TAKEN": email_taken,
    "INVALID_CREDENTIALS": invalid_credentials,
    "TOKEN_REUSED": token_reused,
    "invalid_request": invalid_request,
    "unsupported_grant_type": unsupported_grant_type,
    "invalid_grant": invalid_grant,
}
# Produced by apps of their own (below): a store that is down, limits of one attempt.
OWN_APP = ("DEPENDENCY_UNAVAILABLE", "RATE_LIMITED")


def answered(ops: dict[str, Op], response: httpx.Response) -> Key | None:
    """(operation, status, code) of an error answer, the operation found from the request
    itself (a scenario cannot credit one route with another's answer); None for a success."""
    if response.status_code < 400:
        return None
    request = response.request
    found = [
        op
        for op in ops.values()
        if op.method == request.method and re.fullmatch(_pattern(op.path), request.url.path)
    ]
    assert len(found) == 1, (request.method, request.url.path)
    body = response.json()
    error = body.get("error")
    code = error["code"] if isinstance(error, dict) else str(error)
    return found[0].id, response.status_code, code


def _pattern(template: str) -> str:
    return re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))


def documented_codes(schema: dict[str, Any]) -> tuple[dict[str, Op], set[Key]]:
    ops: dict[str, Op] = {}
    keys: set[Key] = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or operation["operationId"].startswith("proxy"):
                continue
            op = Op(operation["operationId"], method.upper(), path)
            ops[op.id] = op
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    examples = response["content"]["application/json"]["examples"]
                    keys.update((op.id, int(status), code) for code in examples)
    return ops, keys


async def rate_limited(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, op: Op
) -> httpx.Response:
    """A second attempt where one is allowed (login, token and password share a budget)."""
    limits = {"rate_limit_login_attempts": 1, "rate_limit_register_attempts": 1}
    async with studio(make_settings, monkeypatch, **limits) as s:
        if op.id == "auth.register":
            await s.account()
            return await send(await s.client(), op, url(op), **await valid(s, op, {}))
        email = await s.account()
        http = await s.client()
        first = await http.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
        kwargs = await valid(s, op, bearer(assert_ok(first)["access_token"]))
        return await send(http, op, url(op), **kwargs)


async def dependency_unavailable(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, ops: list[Op]
) -> list[httpx.Response]:
    """Every operation in `ops` once Redis has stopped, called with credentials that were good."""
    answers = []
    with RedisServer() as server:
        async with studio(make_settings, monkeypatch, redis_url=server.url) as s:
            admin = await s.admin_headers()
            _, pair = await s.tokens()
            server.stop()
            for op in ops:
                own = bearer(pair["refresh_token"]) if op.id == "auth.refresh" else admin
                kwargs = await valid(s, op, own)
                answers.append(await send(await s.client(), op, url(op), **kwargs))
    return answers


# Run on every operation too, not only where their code is documented: an answer that is not
# documented fails the test (a declaration dropped, a dependency added without its errors).
PROBES = (
    "HEADERS_TOO_LARGE",
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "TOKEN_INVALID",
    "FORBIDDEN",
    "CSRF_FAILED",
)


async def test_every_documented_code_is_answered_and_every_answer_documented(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    produced: set[Key | None] = set()
    unprovable: list[Key] = []
    async with studio(make_settings, monkeypatch) as s:
        ops, documented = documented_codes(s.app.openapi())
        assert len(ops) >= 20 and len(documented) >= 100
        for key in sorted(documented):
            op_id, _, code = key
            scenario = SCENARIOS.get(code)
            if scenario is None:
                if code not in OWN_APP:
                    unprovable.append(key)
                continue
            produced.add(answered(ops, await scenario(s, ops[op_id])))
        for op in ops.values():
            for code in PROBES:
                if code == "CSRF_FAILED" and (not op.writes or op.id == "auth.login"):
                    continue  # a cookie read needs no CSRF token (login's is checked above)
                produced.add(answered(ops, await SCENARIOS[code](s, op)))
    limited = sorted({k[0] for k in documented if k[2] == "RATE_LIMITED"})
    for op_id in limited:
        produced.add(answered(ops, await rate_limited(make_settings, monkeypatch, ops[op_id])))
    down = [ops[i] for i in sorted({k[0] for k in documented if k[2] == "DEPENDENCY_UNAVAILABLE"})]
    for response in await dependency_unavailable(make_settings, monkeypatch, down):
        produced.add(answered(ops, response))
    produced.discard(None)
    assert unprovable == []
    assert sorted(documented - produced) == [], "documented, never answered"
    assert sorted(k for k in produced - documented if k) == [], "answered, not documented"
