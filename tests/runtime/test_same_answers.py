"""Each speed-up of app/runtime changes no byte of an answer: the same with it on and off."""

from __future__ import annotations

import argparse
import gc
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import Settings, get_settings
from app.runtime.protocol import STOCK_PROTOCOL, CorkedHttpToolsProtocol
from tests.runtime.conftest import SSE_EVENTS, Running, answers, sign_in, studio

SPEED_UPS = ("runtime_corked_writes", "runtime_fast_lane", "runtime_gc_freeze")


def engaged(setting: str, running: Running) -> bool:
    """Whether this speed-up is at work in the running Studio."""
    if setting == "runtime_corked_writes":
        protocol = running.server.config.http_protocol_class
        assert issubclass(protocol, HttpToolsProtocol)
        return protocol is CorkedHttpToolsProtocol
    if setting == "runtime_fast_lane":
        return running.app._lane is not None  # built with the stack, on the first request
    return gc.get_freeze_count() > 0


def check_what_they_are(raw: dict[str, bytes]) -> None:
    """The answers compared are the ones meant, each twice (kept alive, then closing)."""
    expected = {
        "enveloped": b"HTTP/1.1 200 OK",
        "error": b"HTTP/1.1 401 Unauthorized",
        "proxied": b"HTTP/1.1 200 OK",
        "sse": b"HTTP/1.1 200 OK",
        "not_found": b"HTTP/1.1 404 Not Found",
    }
    for name, status in expected.items():
        assert raw[name].startswith(status), (name, raw[name][:200])
        assert raw[name].count(status) == 2, (name, raw[name])
        assert raw[name].count(b"x-request-id: runtime-") == 2, (name, raw[name])
    assert b'"success":true' in raw["enveloped"]
    assert b'"code":"UNAUTHORIZED"' in raw["error"] or b'"success":false' in raw["error"]
    assert b'"data":"aaa' in raw["proxied"]
    assert b"transfer-encoding: chunked" in raw["sse"]
    assert raw["sse"].count(b"event: tick") == 2 * SSE_EVENTS
    assert raw["sse"].endswith(b"0\r\n\r\n")
    assert b'"success":false' in raw["not_found"]


@pytest.mark.parametrize("setting", SPEED_UPS)
async def test_answers_are_the_same_with_the_speed_up_on_and_off(
    setting: str, runtime_settings: Settings
) -> None:
    seen: dict[bool, dict[str, bytes]] = {}
    token = ""
    for on in (True, False):
        settings = runtime_settings.model_copy(update={setting: on})
        async with studio(settings) as running:
            token = token or await sign_in(running.port)  # the same account for both
            seen[on] = await answers(running, token)
            assert engaged(setting, running) is on
    check_what_they_are(seen[True])
    for name, raw in seen[True].items():
        assert raw == seen[False][name], name


async def test_all_speed_ups_off_answer_as_all_on(runtime_settings: Settings) -> None:
    seen: dict[bool, dict[str, bytes]] = {}
    token = ""
    for on in (True, False):
        settings = runtime_settings.model_copy(update=dict.fromkeys(SPEED_UPS, on))
        async with studio(settings) as running:
            token = token or await sign_in(running.port)
            seen[on] = await answers(running, token)
    check_what_they_are(seen[False])
    assert seen[True] == seen[False]


def test_the_speed_ups_are_on_by_default() -> None:
    settings = Settings(_env_file=None)
    assert all(getattr(settings, name) is True for name in SPEED_UPS)


@pytest.mark.parametrize(("value", "corked"), [("true", True), ("false", False)])
def test_studio_serve_picks_the_protocol_by_the_setting(
    value: str, corked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from app import cli
    from app.observability import multiprocess

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: ran.update(options))
    monkeypatch.setattr(multiprocess, "prepare", lambda workers: None)
    monkeypatch.setenv("RUNTIME_CORKED_WRITES", value)
    get_settings.cache_clear()
    try:
        ns = argparse.Namespace(host=None, port=None, workers=None, reload=False)
        assert cli.serve(ns) == 0
    finally:
        get_settings.cache_clear()
    if corked:
        assert ran["http"] == "app.runtime.protocol:CorkedHttpToolsProtocol"
    else:
        assert ran["http"] == STOCK_PROTOCOL == "httptools"
