"""Every bad token is refused with the right code, in the envelope, with 401."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.auth.tokens import REQUIRED_CLAIMS
from tests.auth.helpers import (
    AUTH,
    account,
    assert_error,
    assert_ok,
    bearer,
    fresh_claims,
    sign,
    unsigned,
)

Pair = dict[str, Any]
Craft = Callable[[Pair], str]


def _expired(token: str) -> str:
    now = int(time.time())
    return sign(fresh_claims(token, iat=now - 120, nbf=now - 120, exp=now - 1))


def _oversized(token: str) -> str:
    # Signed with the right secret and otherwise valid: only its size is wrong.
    return sign(fresh_claims(token, pad="x" * 4200))


ACCESS_CASES: dict[str, tuple[Craft, str]] = {
    "forged-signature": (
        lambda p: sign(fresh_claims(p["access_token"]), secret="another-secret-" + "x" * 32),
        "TOKEN_INVALID",
    ),
    "tampered-payload": (
        lambda p: _swap_payload(p["access_token"], fresh_claims(p["access_token"], sub="x")),
        "TOKEN_INVALID",
    ),
    "expired": (lambda p: _expired(p["access_token"]), "TOKEN_EXPIRED"),
    "expired-and-forged": (
        lambda p: sign(
            fresh_claims(p["access_token"], exp=int(time.time()) - 60),
            secret="another-secret-" + "x" * 32,
        ),
        "TOKEN_INVALID",
    ),
    "not-yet-valid": (
        lambda p: sign(fresh_claims(p["access_token"], nbf=int(time.time()) + 120)),
        "TOKEN_INVALID",
    ),
    "wrong-audience": (
        lambda p: sign(fresh_claims(p["access_token"], aud="another-service")),
        "TOKEN_INVALID",
    ),
    "wrong-issuer": (
        lambda p: sign(fresh_claims(p["access_token"], iss="someone-else")),
        "TOKEN_INVALID",
    ),
    "alg-none": (lambda p: unsigned(fresh_claims(p["access_token"])), "TOKEN_INVALID"),
    "alg-None": (lambda p: unsigned(fresh_claims(p["access_token"]), "None"), "TOKEN_INVALID"),
    "alg-none-with-signature": (
        lambda p: unsigned(fresh_claims(p["access_token"])) + p["access_token"].split(".")[2],
        "TOKEN_INVALID",
    ),
    "hs512-right-secret": (
        lambda p: sign(fresh_claims(p["access_token"]), algorithm="HS512"),
        "TOKEN_INVALID",
    ),
    "hs384-right-secret": (
        lambda p: sign(fresh_claims(p["access_token"]), algorithm="HS384"),
        "TOKEN_INVALID",
    ),
    "refresh-as-access": (lambda p: p["refresh_token"], "TOKEN_INVALID"),
    "unknown-type": (
        lambda p: sign(fresh_claims(p["access_token"], typ="id")),
        "TOKEN_INVALID",
    ),
    "numeric-subject": (
        lambda p: sign(fresh_claims(p["access_token"], sub=12345)),
        "TOKEN_INVALID",
    ),
    "empty-session-id": (
        lambda p: sign(fresh_claims(p["access_token"], sid="")),
        "TOKEN_INVALID",
    ),
    "oversized": (lambda p: _oversized(p["access_token"]), "TOKEN_INVALID"),
    "garbage": (lambda p: "garbage", "TOKEN_INVALID"),
    "three-garbage-parts": (lambda p: "a.b.c", "TOKEN_INVALID"),
    "dots-only": (lambda p: "..", "TOKEN_INVALID"),
    "two-parts": (lambda p: ".".join(p["access_token"].split(".")[:2]), "TOKEN_INVALID"),
    "four-parts": (lambda p: p["access_token"] + ".x", "TOKEN_INVALID"),
    "large-garbage": (lambda p: "A" * 10_000, "TOKEN_INVALID"),
}
for _claim in REQUIRED_CLAIMS:
    ACCESS_CASES[f"missing-{_claim}"] = (
        lambda p, c=_claim: sign(fresh_claims(p["access_token"], **{c: None})),  # type: ignore[misc]
        "TOKEN_INVALID",
    )


def _swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    payload = sign(claims).split(".")[1]
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("case", sorted(ACCESS_CASES))
async def test_bad_access_token_refused(client: httpx.AsyncClient, case: str) -> None:
    _, pair = await account(client)
    craft, code = ACCESS_CASES[case]
    response = await client.get(f"{AUTH}/me", headers=bearer(craft(pair)))
    assert_error(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"
    # The session itself is untouched by a refused token.
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))


REFRESH_CASES: dict[str, tuple[Craft, str]] = {
    "access-as-refresh": (lambda p: p["access_token"], "TOKEN_INVALID"),
    "expired": (lambda p: _expired(p["refresh_token"]), "TOKEN_EXPIRED"),
    "alg-none": (lambda p: unsigned(fresh_claims(p["refresh_token"])), "TOKEN_INVALID"),
    "hs512-right-secret": (
        lambda p: sign(fresh_claims(p["refresh_token"]), algorithm="HS512"),
        "TOKEN_INVALID",
    ),
    "wrong-audience": (
        lambda p: sign(fresh_claims(p["refresh_token"], aud="another-service")),
        "TOKEN_INVALID",
    ),
    "missing-jti": (lambda p: sign(fresh_claims(p["refresh_token"], jti=None)), "TOKEN_INVALID"),
    "oversized": (lambda p: _oversized(p["refresh_token"]), "TOKEN_INVALID"),
    "garbage": (lambda p: "not-a-token", "TOKEN_INVALID"),
}


@pytest.mark.parametrize("case", sorted(REFRESH_CASES))
async def test_bad_refresh_token_refused(client: httpx.AsyncClient, case: str) -> None:
    _, pair = await account(client)
    craft, code = REFRESH_CASES[case]
    response = await client.post(f"{AUTH}/refresh", headers=bearer(craft(pair)))
    assert_error(response, 401, code)
    # Refused tokens are not reuse: the real refresh token still rotates once.
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])))


HEADERS: dict[str, dict[str, str]] = {
    "no-header": {},
    "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    "token-scheme": {"Authorization": "Token abc.def.ghi"},
    "bare-token": {"Authorization": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
    "bearer-without-token": {"Authorization": "Bearer "},
    "empty-header": {"Authorization": ""},
}


@pytest.mark.parametrize("case", sorted(HEADERS))
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/me"),
        ("POST", "/refresh"),
        ("POST", "/logout"),
        ("GET", "/sessions"),
        ("DELETE", "/sessions/abc"),
        ("POST", "/password"),
    ],
)
async def test_missing_or_non_bearer_is_unauthorized(
    client: httpx.AsyncClient, case: str, method: str, path: str
) -> None:
    body = {"current_password": "whatever-1", "new_password": "whatever-2"}
    response = await client.request(
        method,
        f"{AUTH}{path}",
        headers=HEADERS[case],
        json=body if path == "/password" else None,
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    for scheme in ("bearer", "BEARER"):
        headers = {"Authorization": f"{scheme} {pair['access_token']}"}
        assert_ok(await client.get(f"{AUTH}/me", headers=headers))


async def test_roles_are_never_read_from_the_token(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    forged = sign(
        fresh_claims(pair["access_token"], roles=["admin"], permissions=["*"], scope="admin")
    )
    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(forged)))
    assert me["roles"] == ["viewer"]
    assert "*" not in me["permissions"] and "admin:users" not in me["permissions"]


async def test_token_of_another_user_session_is_revoked(client: httpx.AsyncClient) -> None:
    # A well-signed token that names user B but session of user A finds no session.
    _, a = await account(client)
    b_user, _ = await account(client)
    crossed = sign(fresh_claims(a["access_token"], sub=b_user["id"]))
    assert_error(await client.get(f"{AUTH}/me", headers=bearer(crossed)), 401, "SESSION_REVOKED")


async def test_well_signed_token_for_unknown_session_is_revoked(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    ghost = sign(fresh_claims(pair["access_token"], sid="0" * 32))
    assert_error(await client.get(f"{AUTH}/me", headers=bearer(ghost)), 401, "SESSION_REVOKED")
    ghost_refresh = sign(fresh_claims(pair["refresh_token"], sid="0" * 32))
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(ghost_refresh)),
        401,
        "SESSION_REVOKED",
    )


async def test_huge_authorization_header_is_refused_not_crashed(client: httpx.AsyncClient) -> None:
    # Beyond the request header budget the whole request may be refused earlier (431).
    response = await client.get(f"{AUTH}/me", headers=bearer("A" * 100_000))
    assert response.status_code in (401, 431), response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] in ("TOKEN_INVALID", "HEADERS_TOO_LARGE")


async def test_token_just_under_the_size_limit_still_works(client: httpx.AsyncClient) -> None:
    # The size check must not refuse ordinary tokens: a padded but small one is fine.
    _, pair = await account(client)
    padded = sign(fresh_claims(pair["access_token"], pad="x" * 2000))
    assert len(padded) < 4096
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(padded)))
