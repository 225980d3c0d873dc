"""X-Request-ID: echoed when well-formed, generated otherwise, present on every response."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.request_id import accept_or_new
from tests.core.test_envelope import tiny_app


@pytest.mark.parametrize("good", ["abc", "A.b_c-1", "x" * 128])
def test_well_formed_ids_are_kept(good: str) -> None:
    assert accept_or_new(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "new\nline", "é", "a/b", "<script>"])
def test_malformed_ids_are_replaced(bad: str) -> None:
    new = accept_or_new(bad)
    assert new != bad
    assert len(new) == 32


@given(st.text(max_size=200))
def test_result_is_always_safe(candidate: str) -> None:
    out = accept_or_new(candidate)
    assert 1 <= len(out) <= 128
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in out)


async def test_id_is_echoed_and_generated() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=tiny_app()), base_url="http://t"
    ) as c:
        echoed = await c.get("/plain", headers={"X-Request-ID": "client-id-42"})
        generated = await c.get("/plain")
        replaced = await c.get("/plain", headers={"X-Request-ID": "bad id!"})
        missing = await c.get("/nope", headers={"X-Request-ID": "on-404"})
    assert echoed.headers["x-request-id"] == "client-id-42"
    assert len(generated.headers["x-request-id"]) == 32
    assert replaced.headers["x-request-id"] not in ("bad id!", "")
    assert missing.headers["x-request-id"] == "on-404"
