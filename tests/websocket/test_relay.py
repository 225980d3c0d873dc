"""The relay against a real downstream WebSocket server, through Studio under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.audit.service import AuditContext
from app.auth.login import open_session
from app.auth.session_cache import SessionCache
from app.auth.session_data import Grants
from app.core.config import Settings
from tests.support import refusing_port, wait_until
from tests.websocket.support import (
    SERVICE_AUTH,
    Downstream,
    Instance,
    make_target,
    serve_downstream,
    sign_up,
    studio,
)

TIMEOUT = 10.0  # an overall bound for each wait on an event, never a measured duration
ORIGIN = "https://app.example"


@pytest.fixture
def ws_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(cors_allow_origins=[ORIGIN])


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    async with serve_downstream() as seen:
        yield seen


@pytest.fixture
async def gateway(ws_settings: Settings, downstream: Downstream) -> AsyncIterator[Instance]:
    async with studio(ws_settings, make_target(downstream.url)) as instance:
        yield instance


@pytest.fixture
async def http(gateway: Instance) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        yield client


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def refusal(exc: pytest.ExceptionInfo[InvalidStatus]) -> tuple[int, dict[str, Any]]:
    response = exc.value.response
    return response.status_code, orjson.loads(response.body or b"{}")


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    """The close code and reason the client got (waits for the close)."""

    async def drain() -> None:
        while True:
            await ws.recv()

    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(drain(), TIMEOUT)
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def test_echo_text_and_binary_with_studio_headers(
    gateway: Instance, http: httpx.AsyncClient, downstream: Downstream
) -> None:
    tokens = await sign_up(http)
    headers = bearer(
        tokens["access_token"],
        **{"X-Request-ID": "ws-req-1", "X-User-Id": "forged", "X_User_Email": "forged@x"},
    )
    async with connect(
        gateway.ws + "/chat/live?room=7",
        additional_headers=headers,
        subprotocols=["chat.v3", "chat.v1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "chat.v1"
        await ws.send("héllo")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "héllo"
        await ws.send(b"\x00\x01\xff")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00\x01\xff"
    seen = {k.lower(): v for k, v in downstream.headers[0].items()}
    assert downstream.paths == ["/chat/live?room=7"]
    assert seen["authorization"] == SERVICE_AUTH.decode()  # the service's, never the client's
    assert seen["x-user-id"] == tokens["user"]["id"]
    assert seen["x-user-email"] == tokens["user"]["email"]
    assert "viewer" in seen["x-user-roles"]
    assert seen["x-request-id"] == "ws-req-1"
    assert "x_user_email" not in seen
    assert "chat.v3" in seen["sec-websocket-protocol"]


async def test_one_megabyte_each_way(gateway: Instance, http: httpx.AsyncClient) -> None:
    tokens = await sign_up(http)
    big = bytes(range(256)) * 4096  # 1 MiB
    text = "é" * (512 * 1024)  # 1 MiB of UTF-8
    async with connect(
        gateway.ws + "/big", additional_headers=bearer(tokens["access_token"]), max_size=None
    ) as ws:
        await ws.send(big)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == big
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == text


async def test_close_codes_pass_both_ways(
    gateway: Instance, http: httpx.AsyncClient, downstream: Downstream
) -> None:
    tokens = await sign_up(http)
    closes_4000 = (
        REGISTRY.get_sample_value(
            "studio_websocket_closes_total", {"service": "zen", "code": "4000"}
        )
        or 0.0
    )
    async with connect(gateway.ws + "/c", additional_headers=bearer(tokens["access_token"])) as ws:
        await ws.close(4000, "client bye")
    code, _ = await asyncio.wait_for(downstream.closes.get(), TIMEOUT)
    assert code == 4000
    await wait_until(lambda: not gateway.front.hub.sockets(), TIMEOUT, "socket released")
    assert (
        REGISTRY.get_sample_value(
            "studio_websocket_closes_total", {"service": "zen", "code": "4000"}
        )
        == closes_4000 + 1
    )
    assert REGISTRY.get_sample_value("studio_websockets_open", {"service": "zen"}) == 0

    async with connect(gateway.ws + "/c", additional_headers=bearer(tokens["access_token"])) as ws:
        await ws.send("close:4321:service done")
        assert await closed_with(ws) == (4321, "service done")

    async with connect(gateway.ws + "/c", additional_headers=bearer(tokens["access_token"])) as ws:
        await ws.send("drop")
        assert await closed_with(ws) == (1011, "service connection lost")


async def test_refused_without_session_or_permission(
    gateway: Instance, http: httpx.AsyncClient, downstream: Downstream
) -> None:
    with pytest.raises(InvalidStatus) as none:
        await connect(gateway.ws + "/x")
    status, body = refusal(none)
    assert (status, body["error"]["code"], body["success"]) == (401, "UNAUTHORIZED", False)
    assert set(body) == {"success", "message", "error", "result"}

    tokens = await sign_up(http)
    with pytest.raises(InvalidStatus) as query:
        await connect(gateway.ws + f"/x?access_token={tokens['access_token']}")
    assert refusal(query)[0] == 401

    auth = gateway.state["auth"]
    pair = await open_session(
        auth,
        "u-ws-none",
        "none@example.com",
        Grants([], ["nexus:read"], 0),
        AuditContext(client_ip="127.0.0.1", user_agent="tests"),
    )
    with pytest.raises(InvalidStatus) as denied:
        await connect(gateway.ws + "/x", additional_headers=bearer(pair.access_token))
    status, body = refusal(denied)
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")

    with pytest.raises(InvalidStatus) as bad:
        await connect(gateway.ws + "/x", additional_headers=bearer("not-a-token"))
    assert refusal(bad)[1]["error"]["code"] == "TOKEN_INVALID"
    assert downstream.paths == []  # no refusal ever reached the service


async def test_cookie_session_needs_an_allowed_origin(
    gateway: Instance, http: httpx.AsyncClient, downstream: Downstream
) -> None:
    await sign_up(http, mode="cookie")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
    for origin, code in (("https://evil.example", "CSRF_FAILED"), (None, "CSRF_FAILED")):
        with pytest.raises(InvalidStatus) as refused:
            await connect(gateway.ws + "/x", additional_headers={"Cookie": cookie}, origin=origin)  # type: ignore[arg-type]
        status, body = refusal(refused)
        assert (status, body["error"]["code"]) == (403, code)
    assert downstream.paths == []  # refused before any downstream connection

    async with connect(
        gateway.ws + "/x",
        additional_headers={"Cookie": cookie},
        origin=ORIGIN,  # type: ignore[arg-type]
    ) as ws:
        await ws.send("from the browser")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "from the browser"
    assert "cookie" not in {k.lower() for k in downstream.headers[0]}


async def test_downstream_refusal_and_outage_answer_before_the_upgrade(
    ws_settings: Settings, gateway: Instance, http: httpx.AsyncClient
) -> None:
    tokens = await sign_up(http)
    with pytest.raises(InvalidStatus) as refused:
        await connect(gateway.ws + "/refuse", additional_headers=bearer(tokens["access_token"]))
    status, body = refusal(refused)
    assert (status, body["error"]["code"]) == (403, "DOWNSTREAM_ERROR")

    with refusing_port() as port:
        async with studio(ws_settings, make_target(f"ws://127.0.0.1:{port}")) as down:
            for _ in range(3):  # the breaker's threshold
                with pytest.raises(InvalidStatus) as outage:
                    await connect(down.ws + "/x", additional_headers=bearer(tokens["access_token"]))
                assert refusal(outage)[1]["error"]["code"] == "UPSTREAM_UNAVAILABLE"
            with pytest.raises(InvalidStatus) as tripped:
                await connect(down.ws + "/x", additional_headers=bearer(tokens["access_token"]))
            assert refusal(tripped)[:1] == (503,)
            assert refusal(tripped)[1]["error"]["code"] == "CIRCUIT_OPEN"


async def test_message_size_limit_closes_1009(
    ws_settings: Settings, downstream: Downstream
) -> None:
    async with studio(ws_settings, make_target(downstream.url, max_message_bytes=1024)) as small:
        async with httpx.AsyncClient(base_url=small.url) as http:
            tokens = await sign_up(http)
        async with connect(
            small.ws + "/x", additional_headers=bearer(tokens["access_token"])
        ) as ws:
            await ws.send(b"a" * 1000)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"a" * 1000
            await ws.send(b"a" * 2048)
            assert (await closed_with(ws))[0] == 1009
        code, _ = await asyncio.wait_for(downstream.closes.get(), TIMEOUT)
        assert code == 1009
        # The service's own message over the limit closes the socket too.
        async with connect(
            small.ws + "/x", additional_headers=bearer(tokens["access_token"])
        ) as ws:
            await asyncio.wait_for(downstream.opened.get(), TIMEOUT)  # the first socket's
            service_side = await asyncio.wait_for(downstream.opened.get(), TIMEOUT)
            await service_side.send_bytes(b"b" * 4096)
            assert (await closed_with(ws))[0] == 1009


async def test_per_user_cap(ws_settings: Settings, downstream: Downstream) -> None:
    async with studio(ws_settings, make_target(downstream.url), per_user_cap=2) as capped:
        async with httpx.AsyncClient(base_url=capped.url) as http:
            tokens = await sign_up(http)
        headers = bearer(tokens["access_token"])
        first = await connect(capped.ws + "/a", additional_headers=headers)
        second = await connect(capped.ws + "/b", additional_headers=headers)
        with pytest.raises(InvalidStatus) as over:
            await connect(capped.ws + "/c", additional_headers=headers)
        status, body = refusal(over)
        assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
        await first.close()
        redis: Redis = capped.state["redis"]
        key = f"{ws_settings.redis_key_prefix}{{u:{tokens['user']['id']}}}:websockets"

        async def held() -> int:
            return int(await redis.zcard(key))

        count = {"n": 2}

        async def poll() -> None:
            while count["n"] != 1:
                count["n"] = await held()
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), TIMEOUT)
        third = await connect(capped.ws + "/c", additional_headers=headers)
        await third.close()
        await second.close()


async def test_redis_down_at_upgrade_is_refused(gateway: Instance, http: httpx.AsyncClient) -> None:
    tokens = await sign_up(http)
    quota = gateway.front.hub.quota
    with refusing_port() as port:
        dead = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        working = quota._redis, quota._take
        quota._redis, quota._take = dead, dead.register_script("return 1")
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(gateway.ws + "/x", additional_headers=bearer(tokens["access_token"]))
        finally:
            quota._redis, quota._take = working
            await dead.aclose()
    status, body = refusal(refused)
    assert (status, body["error"]["code"]) == (503, "DEPENDENCY_UNAVAILABLE")


@pytest.mark.parametrize("cache_seconds", [5.0, 0.0])
async def test_session_end_closes_sockets_on_every_instance(
    make_settings: Callable[..., Settings], downstream: Downstream, cache_seconds: float
) -> None:
    """Through the invalidation channel, with the session cache on or off: the periodic
    re-check is pushed out of reach, so only the published change can close the sockets."""
    ws_settings = make_settings(
        cors_allow_origins=[ORIGIN],
        session_cache_seconds=cache_seconds,
        websocket_check_interval=300,  # the most it may be
    )
    target = make_target(downstream.url)
    async with (
        studio(ws_settings, target) as a,
        studio(ws_settings, target) as b,
        httpx.AsyncClient(base_url=a.url) as http,
    ):
        tokens = await sign_up(http)
        token = tokens["access_token"]
        for instance in (a, b):  # both subscribers listen before anything is published
            cache: SessionCache = instance.state["session_store"].cache
            await wait_until(lambda: cache.live, TIMEOUT, "invalidations subscribed")  # noqa: B023
        on_b = await connect(b.ws + "/x", additional_headers=bearer(token))
        await on_b.send("still here")
        assert await asyncio.wait_for(on_b.recv(), TIMEOUT) == "still here"
        out = await http.post("/api/v1/auth/logout", headers=bearer(token))
        assert out.status_code == 200
        assert await closed_with(on_b) == (4401, "session ended")

        # A role change that removes the permission: 4403 on the other instance.
        tokens = await sign_up(http)
        on_b = await connect(b.ws + "/x", additional_headers=bearer(tokens["access_token"]))
        await a.state["session_store"].update_grants(tokens["user"]["id"], [], ["nexus:read"])
        assert (await closed_with(on_b))[0] == 4403

        # A password change ends the user's other sessions, and their sockets.
        tokens = await sign_up(http)
        other = await http.post(
            "/api/v1/auth/login",
            json={"email": tokens["user"]["email"], "password": "websocket-test-password"},
        )
        on_b = await connect(b.ws + "/x", additional_headers=bearer(tokens["access_token"]))
        changed = await http.post(
            "/api/v1/auth/password",
            headers=bearer(other.json()["result"]["access_token"]),
            json={
                "current_password": "websocket-test-password",
                "new_password": "another-pass-1",
            },
        )
        assert changed.status_code == 200, changed.text
        assert (await closed_with(on_b))[0] == 4401


async def test_idle_timeout_and_shutdown_close_the_socket(
    ws_settings: Settings, downstream: Downstream
) -> None:
    async with studio(ws_settings, make_target(downstream.url, idle_timeout=0.3)) as idle:
        async with httpx.AsyncClient(base_url=idle.url) as http:
            tokens = await sign_up(http)
        headers = bearer(tokens["access_token"])
        ws = await connect(idle.ws + "/x", additional_headers=headers)
        assert await closed_with(ws) == (1001, "idle timeout")
    async with studio(ws_settings, make_target(downstream.url)) as gateway:
        ws = await connect(gateway.ws + "/x", additional_headers=headers)
        await ws.send("before shutdown")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "before shutdown"
        await gateway.front.hub.close_all()
        assert await closed_with(ws) == (1001, "server shutting down")
        with pytest.raises(InvalidStatus) as late:  # no new socket once closing
            await connect(gateway.ws + "/x", additional_headers=headers)
        assert refusal(late)[0] == 503
