"""Sessions: listed per caller with the current one flagged; revocable only by their owner."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.auth.helpers import (
    AUTH,
    account,
    assert_error,
    assert_ok,
    bearer,
    claims_of,
    login,
)


async def _sessions(client: httpx.AsyncClient, token: str) -> list[dict[str, object]]:
    result = assert_ok(await client.get(f"{AUTH}/sessions", headers=bearer(token)))
    sessions: list[dict[str, object]] = result["sessions"]
    return sessions


async def test_list_shows_own_sessions_with_current_flag(client: httpx.AsyncClient) -> None:
    user, laptop = await account(client, **{"User-Agent": "laptop-browser/1.0"})
    phone = await login(client, user["email"], headers={"User-Agent": "phone-app/2.0"})
    _, stranger = await account(client, **{"User-Agent": "stranger/1.0"})

    listed = await _sessions(client, phone["access_token"])
    assert len(listed) == 2
    by_id = {s["id"]: s for s in listed}
    laptop_sid = claims_of(laptop["access_token"])["sid"]
    phone_sid = claims_of(phone["access_token"])["sid"]
    assert set(by_id) == {laptop_sid, phone_sid}
    assert by_id[phone_sid]["current"] is True
    assert by_id[laptop_sid]["current"] is False
    assert by_id[phone_sid]["user_agent"] == "phone-app/2.0"
    assert by_id[laptop_sid]["user_agent"] == "laptop-browser/1.0"
    assert {s["client_ip"] for s in listed} == {"127.0.0.1"}
    for s in listed:
        created = datetime.fromisoformat(str(s["created_at"]))
        seen = datetime.fromisoformat(str(s["last_seen_at"]))
        assert created.tzinfo is not None and seen >= created
    # Oldest first.
    assert [s["id"] for s in listed] == [laptop_sid, phone_sid]

    # The same list from the other session flips the flag; the stranger's is not in it.
    flipped = {s["id"]: s["current"] for s in await _sessions(client, laptop["access_token"])}
    assert flipped == {laptop_sid: True, phone_sid: False}
    assert claims_of(stranger["access_token"])["sid"] not in flipped
    assert len(await _sessions(client, stranger["access_token"])) == 1


async def test_revoke_another_own_session(client: httpx.AsyncClient) -> None:
    user, keep = await account(client)
    drop = await login(client, user["email"])
    drop_sid = claims_of(drop["access_token"])["sid"]

    response = await client.delete(
        f"{AUTH}/sessions/{drop_sid}", headers=bearer(keep["access_token"])
    )
    assert assert_ok(response) is None
    assert_error(
        await client.get(f"{AUTH}/me", headers=bearer(drop["access_token"])),
        401,
        "SESSION_REVOKED",
    )
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(drop["refresh_token"])),
        401,
        "SESSION_REVOKED",
    )
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(keep["access_token"])))
    assert [s["id"] for s in await _sessions(client, keep["access_token"])] == [
        claims_of(keep["access_token"])["sid"]
    ]
    # Gone is gone: a second delete is NOT_FOUND.
    again = await client.delete(f"{AUTH}/sessions/{drop_sid}", headers=bearer(keep["access_token"]))
    assert_error(again, 404, "NOT_FOUND")


async def test_revoke_the_current_session(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    sid = claims_of(pair["access_token"])["sid"]
    assert_ok(await client.delete(f"{AUTH}/sessions/{sid}", headers=bearer(pair["access_token"])))
    assert_error(
        await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])),
        401,
        "SESSION_REVOKED",
    )


async def test_someone_elses_session_is_not_found(client: httpx.AsyncClient) -> None:
    _, victim = await account(client)
    _, attacker = await account(client)
    victim_sid = claims_of(victim["access_token"])["sid"]

    response = await client.delete(
        f"{AUTH}/sessions/{victim_sid}", headers=bearer(attacker["access_token"])
    )
    assert_error(response, 404, "NOT_FOUND")
    # The victim's session still works, access and refresh alike.
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(victim["access_token"])))
    assert victim_sid in {s["id"] for s in await _sessions(client, victim["access_token"])}
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(victim["refresh_token"])))


async def test_unknown_and_odd_session_ids_are_not_found(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    for sid in ("0" * 32, "nope", "*", "%2A", "..%2F..", "a" * 300):
        response = await client.delete(
            f"{AUTH}/sessions/{sid}", headers=bearer(pair["access_token"])
        )
        assert response.status_code == 404, (sid, response.text)
        assert response.json()["success"] is False
    assert len(await _sessions(client, pair["access_token"])) == 1
