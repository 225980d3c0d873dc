"""Property-based tests the existing suites lack: the envelope normaliser, the path guard on
arbitrary bytes (tests/proxy/test_pathguard.py covers generated paths; the registry merger is
covered by tests/registry/test_merge_properties.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.envelope import ENVELOPE_KEYS, dumps, is_envelope, wrap
from app.proxy.errors import InvalidPath
from app.proxy.pathguard import validate_tail

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
statuses = st.integers(100, 599)
envelopes = st.fixed_dictionaries(
    {"success": st.booleans(), "message": st.text(max_size=10), "error": json_values,
     "result": json_values}
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(body=json_values, status=statuses)
def test_wrap_always_gives_exactly_one_envelope(body: Any, status: int) -> None:
    wrapped = wrap(body, status)
    assert wrapped.keys() == ENVELOPE_KEYS
    assert is_envelope(wrapped)
    assert orjson.loads(dumps(wrapped)) == wrapped  # serialisable as is
    if is_envelope(body):
        assert wrapped == body
    elif status < 400:
        assert wrapped["success"] is True and wrapped["result"] == body
        assert wrapped["error"] is None
    else:
        assert wrapped["success"] is False and wrapped["result"] is None
        assert wrapped["error"]["details"] == body
        code = wrapped["error"]["code"]
        assert code.isupper() and " " not in code


@settings(max_examples=200, deadline=None)
@given(body=json_values, status=statuses)
def test_wrap_is_idempotent(body: Any, status: int) -> None:
    once = wrap(body, status)
    assert wrap(once, status) == once
    assert wrap(once, 200 if status >= 400 else 500) == once  # an envelope is never re-wrapped


@settings(max_examples=200, deadline=None)
@given(body=envelopes, status=statuses)
def test_existing_envelopes_pass_untouched(body: dict[str, Any], status: int) -> None:
    assert wrap(body, status) == body


@settings(max_examples=1000, deadline=None)
@given(tail=st.binary(max_size=64))
def test_path_guard_on_arbitrary_bytes_accepts_or_raises_invalid_path(tail: bytes) -> None:
    try:
        accepted = validate_tail(tail)
    except InvalidPath:
        return
    decoded = unquote_to_bytes(tail)
    assert unquote_to_bytes(accepted) == decoded  # the normal form means the same path
    assert decoded.count(b"/") == tail.count(b"/")
    assert b"\\" not in decoded and b"\x00" not in decoded
    for segment in decoded.split(b"/"):
        assert segment.split(b";", 1)[0] not in (b".", b"..")
