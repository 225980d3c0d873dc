"""`studio create-admin` and `studio audit purge` against the run's database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.cli import main
from app.core.config import get_settings
from app.core.types import utcnow


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: object) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.chdir(str(tmp_path))  # no stray env files
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _run(*argv: str) -> int:
    # The CLI runs its own event loop, so it goes to a thread here.
    return await asyncio.to_thread(main, list(argv))


async def test_create_admin_makes_a_working_administrator(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    client: httpx.AsyncClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = f"Boss-{uuid.uuid4().hex[:6]}@Example.com"
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "a-strong-admin-pass")
    assert await _run("create-admin", "--email", email) == 0
    assert "created" in capsys.readouterr().out
    login = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "a-strong-admin-pass"}
    )
    assert login.status_code == 200
    assert login.json()["result"]["user"]["roles"] == ["admin"]
    # Running it again promotes/resets rather than failing.
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "another-admin-pass")
    assert await _run("create-admin", "--email", email) == 0
    assert "promoted" in capsys.readouterr().out
    again = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "another-admin-pass"}
    )
    assert again.status_code == 200


async def test_create_admin_refuses_a_weak_password(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "short")
    assert await _run("create-admin", "--email", "weak@example.com") == 2
    assert "at least 8" in capsys.readouterr().err


async def test_audit_purge_keeps_the_retention(cli_env: None, state: dict[str, object]) -> None:
    sessions = state["sessions"]
    async with sessions() as db:  # type: ignore[operator]
        old = AuditEvent(
            action="test.old", occurred_at=utcnow() - timedelta(days=400), outcome="success"
        )
        new = AuditEvent(action="test.new", occurred_at=utcnow(), outcome="success")
        db.add_all([old, new])
        await db.commit()
    assert await _run("audit", "purge", "--days", "365") == 0
    async with sessions() as db:  # type: ignore[operator]
        actions = set((await db.execute(select(AuditEvent.action))).scalars())
        purges = await db.scalar(
            select(func.count()).where(AuditEvent.action == "admin.audit_purge")
        )
    assert "test.old" not in actions and "test.new" in actions
    assert purges and purges >= 1


async def test_create_admin_refuses_a_full_name_its_column_cannot_hold(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "a-strong-admin-pass")
    email = f"long-{uuid.uuid4().hex[:6]}@example.com"
    assert await _run("create-admin", "--email", email, "--full-name", "x" * 201) == 2
    assert "Invalid input" in capsys.readouterr().err
    assert await _run("create-admin", "--email", email, "--full-name", " Ada ") == 0
    assert f"administrator {email} created" in capsys.readouterr().out
