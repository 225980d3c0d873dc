"""The proxy's state (services, pools, breakers) as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.proxy.state import STATE_KEY, ProxyState


def proxy_of(request: Request) -> ProxyState:
    return request.scope["state"][STATE_KEY]  # type: ignore[no-any-return]


Proxy = Annotated[ProxyState, Depends(proxy_of)]
