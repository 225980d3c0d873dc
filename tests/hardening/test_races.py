"""Races: a logout racing refreshes and requests never leaves a live session behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.hardening.conftest import API, assert_error, login, user

pytestmark = [pytest.mark.services]


async def test_logout_racing_refreshes_leaves_no_session(studio: Callable[..., Any]) -> None:
    async with studio() as (client, state):
        email, _ = await user(client, state)
        pair = (await login(client, email)).json()["result"]
        access = {"Authorization": f"Bearer {pair['access_token']}"}
        refresh = {"Authorization": f"Bearer {pair['refresh_token']}"}

        results = await asyncio.gather(
            *(client.post(f"{API}/auth/refresh", headers=refresh) for _ in range(10)),
            client.post(f"{API}/auth/logout", headers=access),
            *(client.get(f"{API}/auth/me", headers=access) for _ in range(10)),
        )
        refreshes, logout, reads = results[:10], results[10], results[11:]
        assert logout.status_code in (200, 401)
        assert sum(r.status_code == 200 for r in refreshes) <= 1
        assert {r.status_code for r in refreshes} <= {200, 401}
        assert {r.status_code for r in reads} <= {200, 401}
        # Whatever won (logout, or reuse detection among the refreshes), the session is gone:
        for r in refreshes:
            if r.status_code == 200:
                token = r.json()["result"]["access_token"]
                assert_error(
                    await client.get(
                        f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"}
                    ),
                    401,
                    "SESSION_REVOKED",
                )
        assert_error(await client.get(f"{API}/auth/me", headers=access), 401, "SESSION_REVOKED")
        me = await client.get(f"{API}/auth/sessions", headers=access)
        assert me.status_code == 401


async def test_role_change_racing_requests_takes_effect_for_every_session(
    studio: Callable[..., Any],
) -> None:
    async with studio() as (client, state):
        _, admin = await user(client, state, "admin")
        email, headers = await user(client, state, "admin")
        me = (await client.get(f"{API}/auth/me", headers=headers)).json()["result"]
        others = [await login(client, email) for _ in range(3)]
        tokens = [headers] + [
            {"Authorization": f"Bearer {o.json()['result']['access_token']}"} for o in others
        ]
        demote = client.patch(
            f"{API}/admin/users/{me['id']}", json={"roles": ["viewer"]}, headers=admin
        )
        reads = [client.get(f"{API}/admin/users", headers=t) for t in tokens for _ in range(3)]
        answers = await asyncio.gather(demote, *reads)
        assert answers[0].status_code == 200, answers[0].text
        assert {r.status_code for r in answers[1:]} <= {200, 403}
        for t in tokens:  # after the change returned, no session keeps the old grants
            assert_error(await client.get(f"{API}/admin/users", headers=t), 403, "FORBIDDEN")
