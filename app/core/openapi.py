"""OpenAPI: documented error responses, tags, and the hook domains extend the schema with.

Routes declare their errors with `error_responses(401, 403, ...)`: each status is documented
with the `ErrorEnvelope` schema, the codes Studio can answer with it (one example per code,
taken from the `StudioError` classes) and its headers. The schema generator then replaces
FastAPI's own 422 body with the envelope and runs each `SchemaExtension` given to `install`
(the proxy documents its routes that way, `app/proxy/openapi.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from app.core import envelope
from app.core.envelope import ErrorEnvelope
from app.core.errors import InternalError, StudioError

if TYPE_CHECKING:
    from fastapi import FastAPI

# Adds to a generated schema: `(schema, components)`, `components` being its `schemas` map.
SchemaExtension = Callable[[dict[str, Any], dict[str, Any]], None]

REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"Bearer": []}, {"SessionCookie": []}]

TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "Accounts, login (Bearer or cookie session), sessions."},
    {"name": "admin", "description": "Users, roles and the audit log (`admin:*`, `audit:read`)."},
    {"name": "discovery", "description": "The services a caller may use, and their health."},
    {"name": "dashboard", "description": "One call for the front page."},
    {"name": "health", "description": "Liveness and readiness."},
]

# Codes answered by code paths other than the StudioError classes.
EXTRA_CODES: dict[int, list[tuple[str, str]]] = {
    404: [("NOT_FOUND", "No route matches this path")],
    405: [("METHOD_NOT_ALLOWED", "Method not allowed")],
}

RATE_HEADERS: dict[str, dict[str, Any]] = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "Requests allowed in the window"),
        ("RateLimit-Remaining", "Requests left in the window"),
        ("RateLimit-Reset", "Seconds until the window resets"),
    )
}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    },
    429: {"Retry-After": RETRY_AFTER, **RATE_HEADERS},
    503: {
        "Retry-After": {
            **RETRY_AFTER,
            "description": "With CIRCUIT_OPEN and UPSTREAM_BUSY: seconds",
        }
    },
}


def _subclasses(cls: type[StudioError]) -> Iterator[type[StudioError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def codes_by_status() -> dict[int, list[tuple[str, str]]]:
    """Every (code, message) Studio answers with, per HTTP status."""
    found: dict[int, dict[str, str]] = {}
    for cls in _subclasses(StudioError):
        if cls is not InternalError:
            found.setdefault(cls.status_code, {}).setdefault(cls.code, cls.message)
    for status, extra in EXTRA_CODES.items():
        for code, message in extra:
            found.setdefault(status, {}).setdefault(code, message)
    return {status: sorted(codes.items()) for status, codes in sorted(found.items())}


def phrase(status: int) -> str:
    return HTTPStatus(status).phrase


def error_response(status: int, codes: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI response object for an error status (schema `ErrorEnvelope`)."""
    codes = codes if codes is not None else codes_by_status().get(status, [])
    listed = ", ".join(f"`{code}`" for code, _ in codes) or "see `error.code`"
    return {
        "description": f"{phrase(status)}: {listed}",
        "headers": dict(HEADERS.get(status, {})),
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="ErrorEnvelope")},
                "examples": {
                    code: {"summary": message, "value": envelope.failure(code, message)}
                    for code, message in codes
                },
            }
        },
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status documented with its codes."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response = error_response(status)
        examples = response["content"]["application/json"]["examples"]
        documented[status] = {
            "model": ErrorEnvelope,  # FastAPI puts its schema next to the examples
            "description": response["description"],
            "headers": response["headers"],
            "content": {"application/json": {"examples": examples}},
        }
    return documented


def install(app: FastAPI, session_cookie: str, extensions: Sequence[SchemaExtension] = ()) -> None:
    """Make `app.openapi()` produce Studio's schema (also when `/openapi.json` is not served).

    `session_cookie` is the cookie's name in this stage (`__Host-` prefixed outside dev)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        add_model(components, ErrorEnvelope)
        _envelope_validation_errors(schema)
        _complete_error_examples(schema)
        _rename_envelopes(schema)
        schemes = schema["components"].get("securitySchemes", {})
        if "SessionCookie" in schemes:
            schemes["SessionCookie"]["name"] = session_cookie
        for extend in extensions:
            extend(schema, components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_model(components: dict[str, Any], model: type[BaseModel]) -> str:
    js = model.model_json_schema(ref_template=REF, mode="serialization")
    for name, definition in js.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, js)
    return REF.format(model=model.__name__)


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                yield operation


def _envelope_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 as its own `HTTPValidationError`; Studio answers the envelope."""
    for operation in _operations(schema):
        responses = operation.get("responses", {})
        if "422" in responses:
            responses["422"] = error_response(422)
    if REF.format(model="HTTPValidationError") not in repr(schema.get("paths", {})):
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)


def _complete_error_examples(schema: dict[str, Any]) -> None:
    """FastAPI drops `null`s from the schema it renders: put the envelope's back in examples."""
    error_ref = REF.format(model="ErrorEnvelope")
    for operation in _operations(schema):
        for response in operation.get("responses", {}).values():
            media = response.get("content", {}).get("application/json", {})
            if media.get("schema", {}).get("$ref") != error_ref:
                continue
            for example in media.get("examples", {}).values():
                value = example.get("value", {})
                value.setdefault("result", None)
                value.setdefault("error", {}).setdefault("details", None)


def _rename_envelopes(schema: dict[str, Any]) -> None:
    """`Envelope_UserRead_` (pydantic's generic name) -> `EnvelopeUserRead` (its title)."""
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    renames: dict[str, str] = {}
    for name, definition in list(components.items()):
        title = definition.get("title", "")
        if name.startswith("Envelope_") and title and title not in components:
            components[title] = components.pop(name)
            renames[REF.format(model=name)] = REF.format(model=title)
    if renames:
        _rewrite_refs(schema, renames)


def _rewrite_refs(node: Any, renames: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            node["$ref"] = renames[ref]
        for value in node.values():
            _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renames)
