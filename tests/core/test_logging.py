"""Log lines: structured, carrying the request context, JSON outside dev, secrets redacted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from loguru import logger

from app.core.config import Settings
from app.core.logging import REDACTED, configure_logging, get_logger, redact
from app.main import create_app
from tests.support import StateApp


@pytest.fixture
def json_settings(make_settings, tmp_path: Path) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    settings = make_settings(log_json=True, log_dir=tmp_path / "logs")
    yield settings
    configure_logging(make_settings())  # back to the suite's console format


def test_redact_is_recursive() -> None:
    event = {
        "headers": {"Authorization": "Bearer abc", "accept": "x"},
        "items": [{"password": "p"}],
    }
    assert redact(event) == {
        "headers": {"Authorization": REDACTED, "accept": "x"},
        "items": [{"password": REDACTED}],
    }


async def test_access_line_is_json_with_context(
    json_settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(json_settings)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, state))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await c.get(
                "/health",
                headers={"X-Request-ID": "log-check-1", "Authorization": "Bearer top-secret-token"},
            )
    lines = [
        orjson.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [entry for entry in lines if entry.get("message") == "request"]
    assert access, lines
    entry = access[-1]
    assert entry["request_id"] == "log-check-1"
    assert entry["method"] == "GET" and entry["path"] == "/health" and entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert "user_id" in entry
    assert all("top-secret-token" not in orjson.dumps(e).decode() for e in lines)


def test_errors_go_to_the_rotating_file(json_settings: Settings) -> None:
    configure_logging(json_settings)
    get_logger("test").error("disk on fire", password="hunter2", user_id="u1")
    logger.complete()
    content = (json_settings.log_dir / "error.log").read_text()
    record = orjson.loads(content.strip().splitlines()[-1])
    assert record["message"] == "disk on fire"
    assert record["user_id"] == "u1"
    assert record["password"] == REDACTED
    assert "hunter2" not in content
