"""Registration: normalised unique emails, password rules, hostile input, racing sign-ups."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.auth.models import User
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    load_user,
    login,
    new_email,
    register,
)


async def _count(state: dict[str, Any], email: str) -> int:
    async with state["sessions"]() as db:
        return int(
            await db.scalar(select(func.count()).select_from(User).where(User.email == email))
        )


async def test_email_is_trimmed_and_lower_cased(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    local = new_email("MiXeD").split("@")[0]
    user = await register(client, email=f"  {local}@Example.COM \t")
    expected = f"{local.lower()}@example.com"
    assert user["email"] == expected
    assert await _count(state, expected) == 1
    pair = await login(client, expected)
    assert pair["user"]["id"] == user["id"]


async def test_duplicate_email_is_taken_whatever_the_case(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    email = new_email("dup")
    await register(client, email=email)
    for variant in (email, email.upper(), f" {email.title()} "):
        response = await client.post(
            f"{AUTH}/register", json={"email": variant, "password": "another password"}
        )
        assert_error(response, 409, "EMAIL_TAKEN")
    assert await _count(state, email) == 1
    # The first password still works; the refused ones never replaced it.
    await login(client, email)


async def test_new_account_is_an_active_viewer(client: httpx.AsyncClient) -> None:
    user = await register(client, full_name="  Grace Hopper  ")
    assert user["roles"] == ["viewer"]
    assert user["is_active"] is True
    assert user["full_name"] == "Grace Hopper"
    assert "admin:users" not in user["permissions"]
    assert set(user) >= {"id", "email", "full_name", "is_active", "roles", "permissions"}
    assert not {"password", "password_hash"} & set(user)


@pytest.mark.parametrize(
    "extra",
    [
        {"roles": ["admin"]},
        {"roles": []},
        {"is_active": False},
        {"is_active": True},
        {"permissions": ["*"]},
        {"is_admin": True},
        {"id": "00000000-0000-0000-0000-000000000001"},
    ],
)
async def test_privileged_fields_are_refused(
    client: httpx.AsyncClient, state: dict[str, Any], extra: dict[str, Any]
) -> None:
    email = new_email("escalate")
    response = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD, **extra}
    )
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert any(next(iter(extra)) in d["loc"] for d in body["error"]["details"])
    assert await _count(state, email) == 0
    # The same account without the field is a plain viewer.
    user = await register(client, email=email)
    pair = await login(client, email)
    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert user["roles"] == me["roles"] == ["viewer"]
    assert "*" not in me["permissions"]


@pytest.mark.parametrize(
    "password",
    [
        "x" * 8,
        "x" * 128,
        "😀" * 8,
        "😀" * 128,
        "密码密码密码密码",
        "пароль-пароль",
        "مرحبا بالعالم",
        "e\u0301e\u0301e\u0301e\u0301",
        "  spaced  ",
        "tab\there\nnewline",
    ],
)
async def test_password_length_and_unicode_accepted(
    client: httpx.AsyncClient, password: str
) -> None:
    user = await register(client, password=password)
    pair = await login(client, user["email"], password)
    assert pair["user"]["id"] == user["id"]


@pytest.mark.parametrize(
    "password", ["x" * 7, "x" * 129, "😀" * 7, "😀" * 129, "", "密码密码密码密"]
)
async def test_password_length_refused(
    client: httpx.AsyncClient, state: dict[str, Any], password: str
) -> None:
    email = new_email("short")
    response = await client.post(f"{AUTH}/register", json={"email": email, "password": password})
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["error"]["details"][0]["loc"] == ["body", "password"]
    if password:
        assert password not in response.text  # never echoed
    assert await _count(state, email) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "nul\x00@example.com"),
        ("email", "a@exa\x00mple.com"),
        ("email", "bell\x07@example.com"),
        ("email", "line\nbreak@example.com"),
        ("email", "del\x7f@example.com"),
        ("email", "not-an-email"),
        ("email", "two@@example.com"),
        ("email", "a" * 320 + "@example.com"),
        ("email", ""),
        ("full_name", "Ada\x00Lovelace"),
        ("full_name", "Ada\x07"),
        ("full_name", "A\nda"),
        ("full_name", "\x1b[31mred"),
        ("full_name", "x" * 201),
        ("full_name", "   "),
        ("password", "password\x00nul"),
    ],
)
async def test_hostile_input_is_422_never_500(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    payload = {
        "email": new_email("hostile"),
        "password": PASSWORD,
        "full_name": "Ada",
        field: value,
    }
    response = await client.post(f"{AUTH}/register", json=payload)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert any(field in d["loc"] for d in body["error"]["details"]), body


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"string"',
        b"null",
        b'{"email": 1, "password": 2}',
        b'{"email": "\\ud800@example.com", "password": "correct horse"}',
    ],
)
async def test_malformed_bodies(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        f"{AUTH}/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_fifty_concurrent_registrations_of_one_email(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    email = new_email("race")

    async def attempt(i: int) -> httpx.Response:
        variant = email.upper() if i % 2 else email
        return await client.post(
            f"{AUTH}/register", json={"email": variant, "password": f"password-{i:03d}"}
        )

    responses = await asyncio.gather(*(attempt(i) for i in range(50)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, statuses
    for r in responses:
        if r.status_code == 409:
            assert_error(r, 409, "EMAIL_TAKEN")
    assert await _count(state, email) == 1

    # Exactly the winner's password opens the account.
    winner = next(r for r in responses if r.status_code == 201)
    index = responses.index(winner)
    stored = await load_user(state, email)
    assert stored is not None
    assert str(stored.id) == winner.json()["result"]["user"]["id"]
    await login(client, email, f"password-{index:03d}")


@pytest.mark.parametrize(
    "template",
    ["jose\u0301-{tag}@example.com", "{tag}@xn--bcher-kva.de", "{tag}@BÜCHER.de"],
    ids=["nfd-local-part", "punycode-domain", "unicode-domain"],
)
async def test_login_with_the_exact_registered_spelling(
    client: httpx.AsyncClient, template: str
) -> None:
    # Whatever spelling register accepted and normalised, the same string must log in.
    email = template.format(tag=new_email("n").split("@")[0])
    user = await register(client, email=email)
    pair = await login(client, email)
    assert pair["user"]["id"] == user["id"]
    # And a second registration with that spelling is a duplicate.
    response = await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD})
    assert_error(response, 409, "EMAIL_TAKEN")
