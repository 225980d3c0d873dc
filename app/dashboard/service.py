"""The dashboard: registry-declared sources fetched concurrently, each with its own timeout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from redis.exceptions import RedisError

from app.core.envelope import is_envelope
from app.core.logging import get_logger
from app.core.redis import RedisClient
from app.identity.principal import Principal
from app.proxy.calls import error_code, get_json
from app.proxy.state import ProxyState
from app.registry.schema import DashboardConfig, DashboardSource

log = get_logger("studio.dashboard")


def _data(body: Any) -> Any:
    return body["result"] if is_envelope(body) else body


async def _fetch(
    proxy: ProxyState, source: DashboardSource, principal: Principal, request_id: str
) -> dict[str, Any]:
    service = proxy.services.get(source.service)
    if service is None:  # a registry reload between the page's config and this call
        return {"ok": False, "error": "SERVICE_NOT_FOUND"}
    permission = source.permission or service.config.permissions.read
    if not principal.can(permission):
        return {"ok": False, "error": "FORBIDDEN"}
    try:
        result = await get_json(
            service,
            source.path,
            deadline=source.timeout,
            request_id=request_id,
            principal=principal,
        )
    except Exception as exc:
        log.info("dashboard source failed", source=source.key, error=type(exc).__name__)
        return {"ok": False, "error": error_code(exc)}
    if result.status >= 400:
        return {"ok": False, "error": "DOWNSTREAM_ERROR", "http_status": result.status}
    return {"ok": True, "data": _data(result.body)}


async def build(
    proxy: ProxyState,
    config: DashboardConfig,
    principal: Principal,
    *,
    request_id: str,
    redis: RedisClient,
    prefix: str,
) -> dict[str, Any]:
    """Every source's slot; failures are reported in their slot, never for the whole page.

    Cached per user (downstreams may answer per user) for `cache_seconds`; only complete
    successes are cached, so a recovered source shows up at once.
    """
    key = f"{prefix}dash:{{{principal.user_id}}}"
    if config.cache_seconds > 0:
        try:
            cached = await redis.get(key)
        except RedisError:
            cached = None  # the cache is an optimisation: go to the sources
        if cached:
            return dict(orjson.loads(cached))
    slots = await asyncio.gather(*(_fetch(proxy, s, principal, request_id) for s in config.sources))
    page = {"sources": {s.key: slot for s, slot in zip(config.sources, slots, strict=True)}}
    if config.cache_seconds > 0 and all(slot["ok"] for slot in slots):
        with contextlib.suppress(RedisError):
            await redis.set(key, orjson.dumps(page), px=int(config.cache_seconds * 1000))
    return page
