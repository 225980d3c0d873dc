"""The peer baseline: the proxy most teams write first (FastAPI, BaseHTTPMiddleware, httpx).

A new `httpx.AsyncClient` per request, one `BaseHTTPMiddleware` layer, the whole body read and
returned as a `Response`. `UPSTREAM` is the origin it forwards to.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8080")

app = FastAPI()


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
    async with httpx.AsyncClient() as client:
        upstream = await client.request(
            request.method, f"{UPSTREAM}/{path}", content=await request.body()
        )
    return Response(
        upstream.content,
        upstream.status_code,
        media_type=upstream.headers.get("content-type"),
    )
