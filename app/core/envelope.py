"""The response envelope: `{success, message, error, result}` on every JSON body."""

from __future__ import annotations

from http import HTTPStatus
from types import UnionType
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.core.errors import code_for_status

T = TypeVar("T")

ENVELOPE_KEYS = frozenset(("success", "message", "error", "result"))
DEFAULT_MESSAGE = "Operation completed"
# Set in the ASGI scope by responses whose body is final, so the safety-net middleware skips them.
FINAL_BODY = "studio.final_body"


# Every field of a body Studio sends is always present: `required` in the schema of responses
# (a generated client then never has to test for an absent key).
ALWAYS_SENT = ConfigDict(json_schema_serialization_defaults_required=True)


class ErrorInfo(BaseModel):
    model_config = ALWAYS_SENT

    code: str = Field(
        description="Stable UPPER_SNAKE error code (the schema `ErrorCode` lists them)"
    )
    details: Any = Field(None, description="What the code needs said; null when nothing")


class Envelope(BaseModel, Generic[T]):
    """A success body: `success` true, `error` null, the answer in `result`."""

    model_config = ALWAYS_SENT

    success: Literal[True] = True
    message: str = DEFAULT_MESSAGE
    error: None = None
    result: T

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        # `EnvelopeUserRead`, `EnvelopeListRoleRead`: readable names in OpenAPI and generated
        # clients, instead of pydantic's `Envelope_UserRead_`.
        return "Envelope" + "".join(_type_name(p) for p in params)


def _type_name(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "None"
    if tp is Any:
        return "Any"
    origin = get_origin(tp)
    if origin is Union or origin is UnionType:
        return "Or".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        base = getattr(origin, "__name__", "Union")
        return base[:1].upper() + base[1:] + "".join(_type_name(a) for a in get_args(tp))
    name = str(getattr(tp, "__name__", tp))
    return name[:1].upper() + name[1:]


class ErrorEnvelope(BaseModel):
    """The body of every error response: `success` false, `result` null, `error.code` set."""

    model_config = ALWAYS_SENT

    success: Literal[False] = False
    message: str
    error: ErrorInfo
    result: None = None


def is_envelope(body: object) -> bool:
    """True when a decoded JSON body already has exactly the envelope's shape."""
    return (
        isinstance(body, dict)
        and body.keys() == ENVELOPE_KEYS
        and isinstance(body.get("success"), bool)
    )


def ok(result: Any = None, message: str = DEFAULT_MESSAGE) -> dict[str, Any]:
    """A success envelope."""
    return {"success": True, "message": message, "error": None, "result": result}


def failure(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """An error envelope."""
    return {
        "success": False,
        "message": message,
        "error": {"code": code, "details": details},
        "result": None,
    }


def wrap(body: Any, status_code: int) -> dict[str, Any]:
    """Put any decoded JSON body into the envelope, keeping one that already is one."""
    if is_envelope(body):
        return dict(body)
    if status_code < 400:
        return ok(body)
    return failure(code_for_status(status_code), reason(status_code), body)


def reason(status_code: int) -> str:
    """The status's reason phrase (`Error` for an unknown one)."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class EnvelopeResponse(JSONResponse):
    """JSON response (orjson) that guarantees the envelope; the default response class.

    A `JSONResponse` so that OpenAPI documents each route's `response_model` as its body."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(wrap(content, self.status_code))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[FINAL_BODY] = True
        await super().__call__(scope, receive, send)


class RawJSONResponse(JSONResponse):
    """JSON response sent exactly as given (declared exceptions to the envelope)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[FINAL_BODY] = True
        await super().__call__(scope, receive, send)
