"""The registry's `websocket` field: on a service or a GET route, compiled into the rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.proxy.routing import CompiledRoutes
from app.registry.schema import ServiceConfig

BASE = {
    "base_url": "http://127.0.0.1:9",
    "permissions": {"read": "zen:chat", "write": "zen:chat"},
}


def test_a_wildcard_service_accepts_upgrades_only_when_it_says_so() -> None:
    on = CompiledRoutes(
        "zen", ServiceConfig.model_validate({**BASE, "mode": "wildcard", "websocket": True})
    )
    off = CompiledRoutes("zen", ServiceConfig.model_validate({**BASE, "mode": "wildcard"}))
    assert on.match("GET", b"any/path").websocket
    assert not off.match("GET", b"any/path").websocket


def test_an_explicit_route_may_accept_upgrades_alone() -> None:
    config = ServiceConfig.model_validate(
        {
            **BASE,
            "mode": "explicit",
            "routes": [
                {"method": "GET", "path": "/live/{job}", "websocket": True, "permission": "x:y"},
                {"method": "GET", "path": "/status"},
            ],
        }
    )
    routes = CompiledRoutes("nexus", config)
    live = routes.match("GET", b"live/7")
    assert (live.websocket, live.permission) == (True, "x:y")
    assert not routes.match("GET", b"status").websocket
    assert config.websocket_limits.max_message_bytes == 4 * 1024 * 1024


def test_a_websocket_route_is_a_get() -> None:
    with pytest.raises(ValidationError, match="a WebSocket route is a GET"):
        ServiceConfig.model_validate(
            {
                **BASE,
                "mode": "explicit",
                "routes": [{"method": "POST", "path": "/live", "websocket": True}],
            }
        )
