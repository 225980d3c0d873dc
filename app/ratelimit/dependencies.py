"""Rate limits as FastAPI dependencies; headers reach every response of a limited route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from app.core.errors import RateLimited
from app.ratelimit.service import Decision, RateLimiter, strictest

RESPONSE_HEADERS = "response_headers"  # request.state key merged into the response


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Headers the request context middleware adds to whatever response leaves."""
    pending: dict[str, str] = request.scope.setdefault("state", {}).setdefault(RESPONSE_HEADERS, {})
    pending.update(headers)


async def enforce(request: Request, checks: list[tuple[str, str, int, int]]) -> Decision:
    """Count one hit on each (bucket, key, limit, window); refuse with 429 when any is spent."""
    limiter: RateLimiter = request.state.rate_limiter
    decisions = [await limiter.hit(b, k, limit=n, window=w) for b, k, n, w in checks]
    decision = strictest(decisions)
    add_response_headers(request, decision.headers())
    if not decision.allowed:
        raise RateLimited(
            "Too many requests; try again later",
            headers=decision.headers(),
            details={"retry_after": int(decision.headers()["Retry-After"])},
        )
    return decision


def per_client_ip(
    bucket: str, limit: Callable[[Request], tuple[int, int]]
) -> Callable[[Request], Awaitable[None]]:
    """A dependency limiting `bucket` per client IP; `limit(request)` gives (count, window)."""

    async def dependency(request: Request) -> None:
        count, window = limit(request)
        await enforce(request, [(bucket, request.state.client_ip, count, window)])

    return dependency
