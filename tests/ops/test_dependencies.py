"""The declared dependencies fit: the image carries runtime needs only, and each is used."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = {Requirement(r).name: Requirement(r) for r in PROJECT["project"]["dependencies"]}

# Distribution -> the module the app imports.
IMPORTED_AS = {
    "fastapi": "fastapi", "uvicorn": "uvicorn", "sqlalchemy": "sqlalchemy",
    "alembic": "alembic", "redis": "redis", "python-jose": "jose", "starlette": "starlette",
    "boto3": "boto3", "pyyaml": "yaml", "pydantic": "pydantic",
    "pydantic-settings": "pydantic_settings", "email-validator": "email_validator",
    "loguru": "loguru", "structlog": "structlog", "libpass": "passlib", "orjson": "orjson",
    "prometheus-client": "prometheus_client", "aiohttp": "aiohttp",
}  # fmt: skip
# Used without an import of Studio's own, each for a stated reason.
INDIRECT = {
    "python-multipart": "FastAPI's Form() parsing (POST /auth/token)",
    "argon2-cffi": "passlib's argon2 backend",
    "asyncpg": "SQLAlchemy's postgresql+asyncpg driver",
    "fastapi-offline": "Swagger UI and ReDoc files read as package data (app/docs/assets.py)",
}


def app_source() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "app").rglob("*.py"))


def test_every_runtime_dependency_is_used() -> None:
    source = app_source()
    for name in RUNTIME:
        if name in INDIRECT:
            continue
        module = IMPORTED_AS.get(name)
        assert module is not None, f"{name}: say what imports it, or remove it"
        assert re.search(rf"^\s*(from|import) {module}\b", source, re.M), f"{name} is unused"


def test_embedded_stand_ins_and_the_browser_are_not_runtime_needs() -> None:
    for name in ("fakeredis", "aiosqlite", "playwright", "respx", "httpx"):
        assert name not in RUNTIME
    extras = PROJECT["project"]["optional-dependencies"]
    assert {Requirement(r).name for r in extras["embedded"]} == {"fakeredis", "aiosqlite"}
    groups = PROJECT["dependency-groups"]
    assert [Requirement(r).name for r in groups["browser"]] == ["playwright"]
    assert "playwright" not in {Requirement(r).name for r in groups["dev"]}


def test_versions_are_bounded_where_it_matters() -> None:
    uvicorn = RUNTIME["uvicorn"].specifier
    assert Version("0.54.0") in uvicorn and Version("0.55.0") not in uvicorn  # the tested series
    jose = RUNTIME["python-jose"].specifier
    assert Version("3.3.0") not in jose and Version("3.4.0") in jose  # the 2024 CVEs


def test_the_image_installs_tracing_and_no_stand_ins() -> None:
    syncs = re.findall(r"uv sync [^\n]*", (ROOT / "Dockerfile").read_text())
    assert syncs and all("--no-dev" in s and "--extra otel" in s for s in syncs)
    assert not any("embedded" in s or "--all-extras" in s or "browser" in s for s in syncs)


def test_the_app_starts_without_the_embedded_stand_ins() -> None:
    blocked = "import sys; sys.modules.update(fakeredis=None, aiosqlite=None, playwright=None)\n"
    code = blocked + (
        "from app.core.config import Settings\n"
        "from app.main import create_app\n"
        "create_app(Settings(_env_file=None, database_url='postgresql://h/db',"
        " redis_host='h', service_overlay_path='config/local.yml'))\n"
        "from app.cli import main\n"
        "raise SystemExit(main(['--help']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_one_http_client_stack() -> None:
    # aiohttp is Studio's one HTTP client (BENCHMARKS.md); httpx is the tests' client only.
    assert "aiohttp" in RUNTIME
    assert not {"httpx", "httpcore", "sniffio"} & RUNTIME.keys()
