"""The envelope on every JSON response, with the real status."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse

from app.core import envelope, handlers
from app.core.middleware import EnvelopeMiddleware, RequestContextMiddleware
from app.ratelimit.errors import RateLimited
from tests.support import live_server

KEYS = {"success", "message", "error", "result"}


class Item(BaseModel):
    name: str
    size: int


# Released by the streaming test each time it has received an event.
STREAM_GATE = asyncio.Event()


def tiny_app() -> FastAPI:
    app = FastAPI(default_response_class=envelope.EnvelopeResponse)
    handlers.install(app)

    @app.get("/plain")
    async def plain() -> dict[str, int]:
        return {"a": 1}

    @app.get("/ok")
    async def ok() -> dict[str, object]:
        return envelope.ok({"x": 1}, "fine")

    @app.post("/items")
    async def items(item: Item) -> dict[str, object]:
        return envelope.ok(item.model_dump())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-database-password in a stack frame")

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited(headers={"Retry-After": "3"})

    @app.get("/foreign-json")
    async def foreign() -> JSONResponse:
        return JSONResponse({"raw": True}, status_code=418)

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("hello")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen():  # type: ignore[no-untyped-def]
            for i in range(3):
                if i:  # the next event only once the client has the previous one
                    await STREAM_GATE.wait()
                    STREAM_GATE.clear()
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(gen(), media_type="text/event-stream")

    app.add_middleware(EnvelopeMiddleware, raw_paths=("/openapi.json",))
    app.add_middleware(RequestContextMiddleware)
    return app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=tiny_app()), base_url="http://t")


async def test_success_is_wrapped_once() -> None:
    async with client() as c:
        plain = await c.get("/plain")
        ok = await c.get("/ok")
    assert plain.status_code == 200
    assert plain.json() == {
        "success": True,
        "message": "Operation completed",
        "error": None,
        "result": {"a": 1},
    }
    assert ok.json() == {"success": True, "message": "fine", "error": None, "result": {"x": 1}}


async def test_unknown_route_is_404_envelope() -> None:
    async with client() as c:
        r = await c.get("/does-not-exist")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == KEYS
    assert body["success"] is False and body["result"] is None
    assert body["error"]["code"] == "NOT_FOUND"


async def test_wrong_method_is_405_envelope() -> None:
    async with client() as c:
        r = await c.delete("/plain")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in r.headers["allow"]


async def test_validation_error_is_422_without_echoing_input() -> None:
    async with client() as c:
        r = await c.post("/items", json={"name": "hunter2-secret", "size": "big"})
        broken = await c.post(
            "/items", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert r.status_code == 422
    body = r.json()
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"][0]["loc"] == ["body", "size"]
    assert "hunter2-secret" not in r.text
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_unhandled_error_is_500_without_trace() -> None:
    async with client() as c:
        r = await c.get("/boom", headers={"x-request-id": "crash-1"})
    assert r.status_code == 500
    assert r.json() == {
        "success": False,
        "message": "Internal server error",
        "error": {"code": "INTERNAL_ERROR", "details": None},
        "result": None,
    }
    assert r.headers["x-request-id"] == "crash-1"
    assert "secret" not in r.text and "Traceback" not in r.text


async def test_studio_error_keeps_status_and_headers() -> None:
    async with client() as c:
        r = await c.get("/limited")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3"
    assert r.json()["error"]["code"] == "RATE_LIMITED"


async def test_foreign_json_is_wrapped_by_the_safety_net() -> None:
    async with client() as c:
        r = await c.get("/foreign-json")
    assert r.status_code == 418
    body = r.json()
    assert body["success"] is False
    assert body["error"]["details"] == {"raw": True}
    assert int(r.headers["content-length"]) == len(r.content)


async def test_non_json_passes_untouched() -> None:
    async with client() as c:
        r = await c.get("/text")
    assert r.text == "hello"
    assert r.headers["content-type"].startswith("text/plain")


async def test_stream_passes_through_unbuffered() -> None:
    """Over a real server, each SSE event reaches the client on its own, while the app still
    holds the next one back: nothing in between gathers the stream up."""
    chunks: list[bytes] = []
    async with (
        asyncio.timeout(30),  # a guard: a buffering layer would wait here for ever
        live_server(tiny_app()) as base,
        httpx.AsyncClient(base_url=base) as c,
        c.stream("GET", "/stream") as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in r.headers
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
            STREAM_GATE.set()
    assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert len(chunks) == 3  # one read per event: the app sent each only after the last arrived


def test_wrap_keeps_existing_envelopes() -> None:
    existing = envelope.failure("X", "y")
    assert envelope.wrap(existing, 500) == existing
    assert envelope.wrap([1, 2], 200)["result"] == [1, 2]
    assert envelope.wrap({"detail": "no"}, 503)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert orjson.loads(envelope.dumps(envelope.ok(None)))["result"] is None
