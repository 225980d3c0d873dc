"""WebSocket metrics: open sockets, messages by direction, closes by code."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OPEN = Gauge(
    "studio_websockets_open",
    "WebSockets relayed now, by service",
    ("service",),
    multiprocess_mode="livesum",
)
MESSAGES = Counter(
    "studio_websocket_messages_total",
    "WebSocket messages relayed, by service and direction (upstream: client to service)",
    ("service", "direction"),
)
CLOSES = Counter(
    "studio_websocket_closes_total",
    "Relayed WebSockets ended, by service and the close code the client got or sent",
    ("service", "code"),
)
REFUSED = Counter(
    "studio_websocket_refusals_total",
    "WebSocket upgrades refused before the downstream was connected, by service and status",
    ("service", "status"),
)
