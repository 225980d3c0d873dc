"""Rate limits as FastAPI dependencies; headers reach every response of a limited route."""

from __future__ import annotations

from fastapi import Request

from app.observability.metrics import observe_rate_limited
from app.ratelimit import keys
from app.ratelimit.errors import RateLimited
from app.ratelimit.service import Decision, RateLimiter, strictest

RESPONSE_HEADERS = "response_headers"  # request.state key merged into the response


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Headers the request context middleware adds to whatever response leaves."""
    pending: dict[str, str] = request.scope.setdefault("state", {}).setdefault(RESPONSE_HEADERS, {})
    pending.update(headers)


async def enforce(request: Request, checks: list[tuple[str, str, int, int]]) -> Decision:
    """Count one hit on each (bucket, key, limit, window); 429 when any is spent.

    All or nothing: when a later bucket refuses, the slots the earlier ones just took are
    given back, so two limits on one request never disagree about which attempts passed.
    """
    limiter: RateLimiter = request.state.rate_limiter
    decisions: list[Decision] = []
    for bucket, key, limit, window in checks:
        decision = await limiter.hit(bucket, key, limit=limit, window=window)
        if not decision.allowed:
            observe_rate_limited(bucket)
            for (b, k, _, _), taken in zip(checks, decisions, strict=False):
                await limiter.release(b, k, taken.member)
            refused = strictest([decision])
            add_response_headers(request, refused.headers())
            raise RateLimited(
                "Too many requests; try again later",
                headers=refused.headers(),
                details={"retry_after": int(refused.headers()["Retry-After"])},
            )
        decisions.append(decision)
    decision = strictest(decisions)
    add_response_headers(request, decision.headers())
    return decision


def client_key(request: Request) -> str:
    """The caller's per-IP bucket key: its address, or its network for IPv6."""
    return keys.client_key(request.state.client_ip, request.state.settings.rate_limit_ipv6_prefix)
