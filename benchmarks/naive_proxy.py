"""The peer baseline: the proxy most teams write first (FastAPI, BaseHTTPMiddleware, httpx).

One shared `httpx.AsyncClient` made at start-up, one `BaseHTTPMiddleware` layer, the whole
body read and returned as a `Response`. `UPSTREAM` is the origin it forwards to.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8080")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(base_url=UPSTREAM) as client:
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


class Timing(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["x-proxied-by"] = "naive"
        return response


app.add_middleware(Timing)


@app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def proxy(path: str, request: Request) -> Response:
    client: httpx.AsyncClient = request.app.state.client
    upstream = await client.request(request.method, f"/{path}", content=await request.body())
    return Response(
        upstream.content,
        upstream.status_code,
        media_type=upstream.headers.get("content-type"),
    )
