"""No password, token, hash or signing secret reaches a log line or the error log file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger

from app.auth import login as auth_login
from app.core.config import Settings
from tests.auth.helpers import (
    AUTH,
    assert_error,
    assert_ok,
    bearer,
    load_user,
    new_email,
    running,
)
from tests.conftest import TEST_SECRET

PASSWORD = "Sup3r-Secret-Passw0rd-Xyzzy"
NEW_PASSWORD = "An0ther-Secret-Passw0rd-Plugh"


class Captured:
    """Every loguru record, serialised whole (message, extra, exception)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: Any) -> None:
        self.lines.append(str(message))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(params=["text", "json"])
async def logged(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any], Captured, Path]]:
    log_dir = tmp_path / f"logs-{request.param}"
    settings = make_settings(log_level="DEBUG", log_dir=log_dir, log_json=request.param == "json")
    async with running(settings) as (client, state):
        # Added after Studio configured its own sinks (which drops earlier ones); like them,
        # tracebacks without local variable values.
        captured = Captured()
        sink_id = logger.add(captured, level=0, serialize=True, backtrace=False, diagnose=False)
        try:
            yield client, state, captured, log_dir / "error.log"
        finally:
            logger.remove(sink_id)


async def test_secrets_never_logged(
    logged: tuple[httpx.AsyncClient, dict[str, Any], Captured, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, captured, error_log = logged
    email = new_email("secret")
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, TEST_SECRET]

    assert_ok(
        await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD}), 201
    )
    pair = assert_ok(
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    )
    assert_error(
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD + "!"}),
        401,
        "INVALID_CREDENTIALS",
    )
    # A validation failure must not echo the password either.
    assert_error(
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD, "x": 1}),
        422,
        "VALIDATION_ERROR",
    )
    form = await client.post(f"{AUTH}/token", data={"username": email, "password": PASSWORD})
    assert form.status_code == 200
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    rotated = assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])))
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])),
        401,
        "TOKEN_REUSED",
    )
    again = assert_ok(
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    )
    assert_ok(
        await client.post(
            f"{AUTH}/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(again["access_token"]),
        )
    )
    assert_ok(await client.post(f"{AUTH}/logout", headers=bearer(again["access_token"])))

    # An unhandled error after the password was checked: the error log gets a traceback.
    async def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("session store exploded")

    monkeypatch.setattr(auth_login, "open_session", explode)
    crashed = await client.post(f"{AUTH}/login", json={"email": email, "password": NEW_PASSWORD})
    assert_error(crashed, 500, "INTERNAL_ERROR")
    assert NEW_PASSWORD not in crashed.text and "exploded" not in crashed.text

    stored = await load_user(state, email)
    assert stored is not None
    secrets.append(stored.password_hash)
    for p in (pair, rotated, again, form.json()):
        for token in (p["access_token"], p["refresh_token"]):
            secrets += [token, token.rsplit(".", 1)[1]]

    logger.complete()
    assert any("unhandled error" in line for line in captured.lines)
    assert any("/auth/login" in line for line in captured.lines)  # the sink did see requests
    file_text = error_log.read_text(encoding="utf-8")
    assert "unhandled error" in file_text and "RuntimeError" in file_text
    for secret in secrets:
        assert secret not in captured.text, f"secret {secret[:6]}... found in captured logs"
        assert secret not in file_text, f"secret {secret[:6]}... found in {error_log}"
