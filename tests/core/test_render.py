"""One renderer: every error class reads the same from every layer that can refuse a request.

The layers are an exception handler (a route raises), pure ASGI middleware (the edge limits),
the proxy route (the forwarder raises before answering) and the last-resort 500 (a crash).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import handlers
from app.core.errors import InternalError, StudioError
from app.core.middleware import EnvelopeMiddleware, RequestContextMiddleware
from app.core.render import render_error, send_error
from app.proxy import forwarder
from app.proxy.router import ProxyRoute
from app.proxy.state import STATE_KEY

for module in ("auth", "proxy", "credentials", "ratelimit"):
    importlib.import_module(f"app.{module}.errors")


def _all(cls: type[StudioError]) -> Iterator[type[StudioError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all(sub)


ERRORS = sorted({*_all(StudioError), StudioError}, key=lambda c: c.__name__)


def _raise(name: str) -> StudioError:
    cls = next(c for c in ERRORS if c.__name__ == name)
    error: StudioError = cls(details={"which": name})
    return error


class FakeProxy:
    services = {"svc": object()}


def build_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    app = FastAPI()
    handlers.install(app)

    @app.get("/handler/{name}")
    async def handler(name: str) -> None:
        raise _raise(name)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    async def forward(*args: Any) -> None:
        raise _raise(args[2]["path"].rsplit("/", 1)[1])

    monkeypatch.setattr(forwarder, "forward", forward)
    app.router.routes.append(ProxyRoute("/proxy"))
    app.add_middleware(EnvelopeMiddleware)
    app.add_middleware(EdgeRefusal)
    app.add_middleware(RequestContextMiddleware)  # as in `create_app`: inside Starlette's own
    return app


class EdgeRefusal:
    """Pure ASGI middleware refusing `/edge/{error}` as the edge limits do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/edge/"):
            await send_error(scope, send, _raise(scope["path"][6:]), close=True)
            return
        if scope["type"] == "http":
            scope.setdefault("state", {})[STATE_KEY] = FakeProxy()
        await self.app(scope, receive, send)


def _expected(error: StudioError) -> tuple[int, bytes, dict[str, str]]:
    rendered = render_error(error)
    headers = {k.decode(): v.decode() for k, v in rendered.headers}
    return rendered.status, rendered.body, headers


def _same(response: httpx.Response, error: StudioError) -> None:
    status, body, headers = _expected(error)
    assert response.status_code == status
    assert response.content == body
    for name, value in headers.items():
        assert response.headers[name] == value


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
async def test_every_error_reads_the_same_from_every_layer(
    cls: type[StudioError], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(monkeypatch)
    error = _raise(cls.__name__)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        from_handler = await client.get(f"/handler/{cls.__name__}")
        from_edge = await client.get(f"/edge/{cls.__name__}")
        from_proxy = await client.get(f"/proxy/svc/{cls.__name__}")
    for response in (from_handler, from_edge, from_proxy):
        _same(response, error)
    assert from_edge.headers["connection"] == "close"
    assert response.json()["error"]["details"] == {"which": cls.__name__}


async def test_a_crash_is_the_rendered_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx.ASGITransport(app=build_app(monkeypatch), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        response = await client.get("/crash")
    _same(response, InternalError())
    assert response.headers["x-request-id"]


async def test_framework_errors_go_through_the_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx.ASGITransport(app=build_app(monkeypatch))
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        missing = await client.get("/nowhere")
        wrong_method = await client.post("/crash")
    assert missing.status_code == 404
    assert missing.json() == {
        "success": False,
        "message": "No route matches this path",
        "error": {"code": "NOT_FOUND", "details": None},
        "result": None,
    }
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert wrong_method.headers["allow"] == "GET"
