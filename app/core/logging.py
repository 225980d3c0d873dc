"""Logging: structlog events rendered through loguru sinks, with secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from loguru import logger

from app.core import request_id as request_ids
from app.core.config import Settings

SECRET_KEYS = frozenset(
    (
        "authorization",
        "cookie",
        "set-cookie",
        "password",
        "current_password",
        "new_password",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "jwt_secret_key",
        "service_password",
        "api_key",
    )
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, recursively."""
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_KEYS else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _add_request_id(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = request_ids.CURRENT.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _redact_processor(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(event_dict[key], dict | list):
            event_dict[key] = redact(event_dict[key])
    return event_dict


def _to_loguru(_: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    event = event_dict.pop("event", "")
    level = event_dict.pop("level", method).upper()
    exc_info = event_dict.pop("exc_info", None)
    logger.opt(exception=exc_info or None).bind(**event_dict).log(
        "WARNING" if level == "WARN" else level, str(event)
    )
    raise structlog.DropEvent


def _json_patcher(record: Any) -> None:
    payload = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        **{k: v for k, v in record["extra"].items() if not k.startswith("_")},
    }
    if record["exception"] is not None:
        payload["exception"] = repr(record["exception"].value)
    record["extra"]["_json"] = orjson.dumps(payload, default=str).decode()


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (uvicorn, SQLAlchemy, alembic) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(settings: Settings) -> None:
    """Install the sinks once per process."""
    logger.remove()
    if settings.json_logs:
        fmt = "{extra[_json]}"
        logger.configure(patcher=_json_patcher)
    else:
        fmt = (
            "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
            "{message} <dim>{extra}</dim>"
        )
        logger.configure(patcher=lambda record: None)
    logger.add(sys.stderr, level=settings.log_level, format=fmt, backtrace=False, diagnose=False)
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            settings.log_dir / "error.log",
            level="ERROR",
            format=fmt if settings.json_logs else "{time} {level} {message} {extra}",
            rotation="10 MB",
            retention="10 days",
            enqueue=False,
            backtrace=False,
            diagnose=False,
        )
    except OSError as exc:  # a read-only filesystem must not stop the service
        logger.warning("error log file disabled: {}", exc)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            _redact_processor,
            _to_loguru,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level.replace("TRACE", "DEBUG")]
        ),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = [_InterceptHandler()]
        logging.getLogger(name).propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # Studio writes its own access line
    for noisy in ("aiohttp", "botocore", "boto3", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger; events carry the request context automatically."""
    return structlog.get_logger(logger_name=name)
