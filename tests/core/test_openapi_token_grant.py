"""`POST /auth/token`, the password grant Swagger's Authorize button uses: RFC 6749's answers."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.helpers import AUTH, PASSWORD, register

pytestmark = pytest.mark.services


async def test_another_grant_type_is_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    user = await register(client)
    for grant in ("client_credentials", "refresh_token", "PASSWORD"):
        form = {"grant_type": grant, "username": user["email"], "password": PASSWORD}
        response = await client.post(f"{AUTH}/token", data=form)
        # RFC 6749 §5.2: 400, the error alone, never the envelope; no token was issued.
        assert response.status_code == 400, grant
        assert response.json() == {"error": "unsupported_grant_type"}, grant
        assert response.headers["cache-control"] == "no-store"


async def test_no_grant_type_is_the_password_grant_and_a_missing_field_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    # CONTRACT.md's form for scripts: `username` and `password` alone.
    response = await client.post(
        f"{AUTH}/token", data={"username": user["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    for form in ({"grant_type": "password", "username": user["email"]}, {"password": PASSWORD}):
        missing = await client.post(f"{AUTH}/token", data=form)
        assert missing.status_code == 400, form
        assert missing.json() == {"error": "invalid_request"}, form


async def test_the_password_grant_issues_tokens_as_swagger_asks(client: httpx.AsyncClient) -> None:
    user = await register(client)
    # Swagger's password flow also sends its (empty) client fields and a scope.
    form = {
        "grant_type": "password",
        "username": user["email"],
        "password": PASSWORD,
        "scope": "",
        "client_id": "",
        "client_secret": "",
    }
    response = await client.post(f"{AUTH}/token", data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    me = await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
