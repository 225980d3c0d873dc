"""Session ids and token ids carry 128 random bits: no fixed version or variant bits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.helpers import PASSWORD, account, claims_of, login

HEX = set("0123456789abcdef")


def _uuid4_shaped(value: str) -> bool:
    # uuid4().hex fixes 6 of its 128 bits: the version nibble and the variant's top bits.
    return len(value) == 32 and value[12] == "4" and value[16] in "89ab"


async def test_session_ids_and_jtis_are_128_random_bits(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    pairs: list[dict[str, Any]] = []
    for _ in range(3):
        user, pair = await account(client)
        pairs += [pair, await login(client, user["email"], PASSWORD)]
    for pair in pairs:
        for token in (pair["access_token"], pair["refresh_token"]):
            claims = claims_of(token)
            seen.extend((claims["sid"], claims["jti"]))
    assert all(len(v) == 32 and set(v) <= HEX for v in seen), seen
    assert len(set(seen)) == len(seen) - 6  # each session id appears on its two tokens
    # With random ids, 18 distinct values all looking like uuid4 happens once in 2**108.
    assert not all(_uuid4_shaped(v) for v in set(seen))
