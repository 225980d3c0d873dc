"""Refusals at the upgrade on a server with and without the denial-response extension."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message

from app.core.errors import NotFound
from app.websocket.refusal import DENIAL, refuse, unrouted


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("HTTP default reached")


async def test_without_the_extension_the_upgrade_is_closed_before_accept() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    status = await refuse({"type": "websocket", "extensions": {}}, send, NotFound(), "rid")
    assert status == 403
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_with_the_extension_the_answer_is_the_envelope_with_the_request_id() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "extensions": {DENIAL: {}}}
    assert await refuse(scope, send, NotFound(), "rid-1") == 404
    start, body = sent
    assert start["status"] == 404
    assert (b"x-request-id", b"rid-1") in start["headers"]
    assert json.loads(body["body"])["error"]["code"] == "NOT_FOUND"


async def test_unrouted_answers_nothing_when_the_client_left_before_connect() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: Message) -> None:
        sent.append(message)

    await unrouted(_never_called)({"type": "websocket"}, receive, send)
    assert sent == []
