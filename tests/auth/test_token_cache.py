"""The verified-token cache of `TokenService.verify`: same answers as a full verification."""

from __future__ import annotations

from typing import Any

import pytest

from app.auth import tokens as tokens_module
from app.auth.errors import TokenExpired, TokenInvalid
from app.auth.tokens import TokenService
from app.core.config import Settings

SECRET = "token-cache-secret-" + "x" * 40


@pytest.fixture
def service(tmp_path: Any) -> TokenService:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="dev", jwt_secret_key=SECRET, log_dir=tmp_path / "logs"
    )
    return TokenService(settings, cache_size=3)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        self.now = time.time()
        monkeypatch.setattr(tokens_module.time, "time", lambda: self.now)


def test_second_verification_is_served_from_the_cache(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = service.issue("access", user_id="u1", session_id="s1")
    first = service.verify(issued.token, "access")
    calls: list[str] = []
    real = service._verify
    monkeypatch.setattr(service, "_verify", lambda t, typ: calls.append(t) or real(t, typ))
    assert service.verify(issued.token, "access") is first
    assert calls == []


def test_expired_entry_is_never_served(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    issued = service.issue("access", user_id="u1", session_id="s1")
    claims = service.verify(issued.token, "access")
    clock.now = claims.exp  # jose's own clock is real: make the full check say "expired"
    calls: list[str] = []

    def expired(token: str, typ: str) -> Any:
        calls.append(token)
        raise TokenExpired()

    monkeypatch.setattr(service, "_verify", expired)
    with pytest.raises(TokenExpired):
        service.verify(issued.token, "access")
    assert calls == [issued.token]
    assert issued.token not in service._cache


def test_wrong_type_is_refused_even_when_cached(service: TokenService) -> None:
    issued = service.issue("access", user_id="u1", session_id="s1")
    service.verify(issued.token, "access")
    with pytest.raises(TokenInvalid):
        service.verify(issued.token, "refresh")


def test_failures_are_not_cached(service: TokenService) -> None:
    issued = service.issue("access", user_id="u1", session_id="s1")
    head, body, _ = issued.token.split(".")
    forged = f"{head}.{body}.AAAA"
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            service.verify(forged, "access")
    assert forged not in service._cache


def test_cache_is_bounded_least_recently_used_first(service: TokenService) -> None:
    issued = [service.issue("access", user_id=f"u{i}", session_id="s").token for i in range(4)]
    for token in issued[:3]:
        service.verify(token, "access")
    service.verify(issued[0], "access")  # now the most recently used
    service.verify(issued[3], "access")
    assert list(service._cache) == [issued[2], issued[0], issued[3]]
