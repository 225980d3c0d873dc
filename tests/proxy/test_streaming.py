"""Bodies that must stream: SSE, downloads, big uploads; size limits; client disconnects."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.fakes.server import pattern
from tests.proxy.conftest import Studio, bearer, eventually

MB = 1024 * 1024


async def test_sse_events_arrive_as_sent(studio: Studio) -> None:
    """Streamed, not buffered: each event reaches the client while the downstream is still
    holding back the next one (it sends an event only once the test has the previous)."""
    zen = studio.fakes.zen
    gate = zen.sse_gate = asyncio.Event()
    events: list[dict[str, object]] = []
    async with (
        asyncio.timeout(30),  # a guard: a buffering proxy would wait here for ever
        studio.http.stream(
            "GET", "/api/v1/zen/sse?n=5&interval=0&gated=1", headers=bearer("admin")
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert "content-length" not in r.headers
        lines: list[str] = []
        async for line in r.aiter_lines():
            if line:
                lines.append(line)
                continue
            fields = dict(item.split(": ", 1) for item in lines)
            assert fields["event"] == "tick"
            events.append({"id": fields["id"], **orjson.loads(fields["data"])})
            lines = []
            assert zen.sse_sent == len(events)  # the next one is not sent yet
            gate.set()
    assert [e["id"] for e in events] == ["0", "1", "2", "3", "4"]
    assert [e["i"] for e in events] == [0, 1, 2, 3, 4]


async def test_client_leaving_an_sse_stream_closes_the_upstream(studio: Studio) -> None:
    async with studio.http.stream(
        "GET", "/api/v1/zen/sse?n=200&interval=0.1", headers=bearer("admin")
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                break
    assert await eventually(lambda: studio.fakes.zen.disconnects == 1, timeout=5)


async def test_client_leaving_before_a_slow_answer_frees_the_downstream(studio: Studio) -> None:
    # zen's read timeout is 10 s: only Studio noticing the client leave closes the call sooner.
    with pytest.raises(httpx.ReadTimeout):
        await studio.http.get("/api/v1/zen/hang", headers=bearer("admin"), timeout=0.5)
    assert await eventually(lambda: studio.fakes.zen.disconnects == 1, timeout=5)


async def test_file_download_is_byte_identical(studio: Studio) -> None:
    size = 5 * MB + 123
    r = await studio.get(f"/nexus/files/{size}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="file-{size}.bin"'
    assert r.headers["content-length"] == str(size)
    assert r.content == pattern(size)


async def test_large_upload_streams_through(studio: Studio) -> None:
    size = 50 * MB
    chunk = bytes(range(256)) * 256  # 64 KiB
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(chunk)):
            digest.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        r = await studio.request("POST", "/ingestion/upload", content=body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200, r.text
    # Client, Studio and the fake share this process: none of them held the 50 MB.
    assert peak < 16 * MB, peak
    echo = r.json()["result"]
    assert echo["body_length"] == size
    assert echo["body_sha256"] == digest.hexdigest()
    headers = dict(echo["headers"])
    assert headers["transfer-encoding"] == "chunked"


async def test_upload_with_content_length_keeps_it(studio: Studio) -> None:
    data = pattern(3 * MB)
    r = await studio.request("PUT", "/ingestion/upload", content=data)
    echo = r.json()["result"]
    assert echo["body_length"] == len(data)
    assert echo["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert dict(echo["headers"])["content-length"] == str(len(data))


async def test_declared_body_over_the_limit_is_413_and_never_sent(studio: Studio) -> None:
    r = await studio.request("POST", "/small/upload", content=b"x" * (MB + 1))
    assert r.status_code == 413
    assert r.json()["error"] == {"code": "PAYLOAD_TOO_LARGE", "details": {"max_body_bytes": MB}}
    assert studio.fakes.ingestion.calls() == []
    # Exactly the limit is fine.
    r = await studio.request("POST", "/small/upload", content=b"x" * MB)
    assert r.json()["result"]["body_length"] == MB


async def test_streamed_body_over_the_limit_is_413(studio: Studio) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"y" * (64 * 1024)

    r = await studio.request("POST", "/small/upload", content=body())
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_json_over_the_cap_passes_raw(studio: Studio) -> None:
    small = await studio.get("/zen/json?size=1000")
    assert set(small.json()) == {"success", "message", "error", "result"}
    for query in ("size=2000000", "size=2000000&chunked=1"):
        r = await studio.get(f"/zen/json?{query}")
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"data"}, query
        assert len(body["data"]) > 1_900_000


async def test_non_json_passes_untouched(studio: Studio) -> None:
    r = await studio.get("/zen/text")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain"
    assert r.text == "plain text from zen"
