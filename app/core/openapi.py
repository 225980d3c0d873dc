"""OpenAPI: per-operation errors, security and the hook domains extend the schema with.

Each operation documents, per status, only the error codes its route can answer: the union of
what its endpoint and its dependencies declare (`app.core.raises`), plus what the edge and
validation answer for any route of its shape (431 always; 413 and 422 with a body; 422 with a
parameter that can be refused). Security is set per operation: reads accept the Bearer token or
the session cookie, state-changing requests need the cookie together with `X-CSRF-Token`. Then
each `SchemaExtension` given to `install` runs (the proxy documents its routes that way,
`app/proxy/openapi.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from fastapi import routing
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.core import db, envelope
from app.core.envelope import ErrorEnvelope
from app.core.errors import (
    STATUS_CODES,
    DependencyUnavailable,
    HeadersTooLarge,
    InternalError,
    PayloadTooLarge,
    StudioError,
    ValidationFailed,
)
from app.core.raises import UNSAFE_METHODS, declare, declared

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.dependencies.models import Dependant

# Adds to a generated schema: `(schema, components)`, `components` being its `schemas` map.
SchemaExtension = Callable[[dict[str, Any], dict[str, Any]], None]

REF = "#/components/schemas/{model}"
Security = list[dict[str, list[str]]]
# A read: the access token, or the session cookie alone.
READ_SECURITY: Security = [{"Bearer": []}, {"SessionCookie": []}]
# A state-changing request: the access token, or the session cookie together with the CSRF
# header (and an allowed `Origin`, which no security scheme can express).
WRITE_SECURITY: Security = [{"Bearer": []}, {"SessionCookie": [], "CsrfHeader": []}]
CSRF_HEADER = "X-CSRF-Token"
SIGNED_IN_SCHEMES = frozenset(("Bearer", "SessionCookie"))

TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "Accounts, login (Bearer or cookie session), sessions."},
    {"name": "admin", "description": "Users, roles and the audit log (`admin:*`, `audit:read`)."},
    {"name": "discovery", "description": "The services a caller may use, and their health."},
    {"name": "dashboard", "description": "One call for the front page."},
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "metrics", "description": "Prometheus exposition, to allowed networks only."},
]

# Codes answered by code paths other than the StudioError classes.
EXTRA_CODES: dict[int, list[tuple[str, str]]] = {
    404: [("NOT_FOUND", "No route matches this path")],
    405: [("METHOD_NOT_ALLOWED", "Method not allowed")],
}
# Codes that are no StudioError's: a downstream's error status, and any other bare status.
OTHER_CODES = ("DOWNSTREAM_ERROR", "HTTP_ERROR")

# `error.details` of the real answers, for the examples (null for every other code).
EXAMPLE_DETAILS: dict[str, Any] = {
    "VALIDATION_ERROR": [
        {"loc": ["body", "email"], "msg": "Field required", "type": "missing"},
    ],
    "FORBIDDEN": {"permission": "admin:users"},
    "CSRF_FAILED": {"reason": "csrf_token"},
    "RATE_LIMITED": {"retry_after": 60},
    "SERVICE_NOT_FOUND": {"service": "nexus"},
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
}
# 503 carries `Retry-After` only with these codes.
RETRY_CODES = frozenset(("CIRCUIT_OPEN", "UPSTREAM_BUSY"))

# The database session fails with 503 when PostgreSQL does not answer (`app.core.handlers`).
declare(db.get_session, DependencyUnavailable)


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


def error_codes() -> list[str]:
    """Every code an error envelope of Studio can carry (the `ErrorCode` enum)."""
    codes = {code for listed in codes_by_status().values() for code, _ in listed}
    codes.update(STATUS_CODES.values(), OTHER_CODES, ("INTERNAL_ERROR",))
    return sorted(codes)


def phrase(status: int) -> str:
    return HTTPStatus(status).phrase


def error_response(status: int, codes: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI response object for an error status (schema `ErrorEnvelope`): the codes in
    its description and one example per code, as Studio answers it."""
    codes = codes if codes is not None else codes_by_status().get(status, [])
    listed = ", ".join(f"`{code}`" for code, _ in codes) or "see `error.code`"
    headers = dict(HEADERS.get(status, {}))
    if status == 503 and RETRY_CODES.intersection(code for code, _ in codes):
        headers["Retry-After"] = {
            **RETRY_AFTER,
            "description": "With CIRCUIT_OPEN and UPSTREAM_BUSY: seconds to wait before retrying",
        }
    return {
        "description": f"{phrase(status)}: {listed}",
        "headers": headers,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="ErrorEnvelope")},
                "examples": {
                    code: {
                        "summary": message,
                        "value": envelope.failure(code, message, EXAMPLE_DETAILS.get(code)),
                    }
                    for code, message in codes
                },
            }
        },
    }


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
        _add_error_codes(components)
        _document_route_errors(schema, _routes(app))
        _drop_validation_models(schema)
        _rename_envelopes(schema)
        _add_security(schema, session_cookie)
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


def _add_error_codes(components: dict[str, Any]) -> None:
    """`error.code` is one of Studio's codes (`ErrorCode`); an envelope passed on from a
    downstream may carry any code (`DownstreamErrorEnvelope`)."""
    components["ErrorCode"] = {
        "title": "ErrorCode",
        "type": "string",
        "enum": error_codes(),
        "description": "The code of an error Studio answers (`error.code`).",
    }
    info = components["ErrorInfo"]
    free_code = info["properties"]["code"]
    components.setdefault(
        "DownstreamErrorInfo",
        {**info, "title": "DownstreamErrorInfo", "properties": {**info["properties"]}},
    )
    components["DownstreamErrorInfo"]["properties"]["code"] = {
        **free_code,
        "description": "`DOWNSTREAM_ERROR`, or the code of a downstream's own envelope",
    }
    info["properties"]["code"] = {"$ref": REF.format(model="ErrorCode")}
    error_envelope = components["ErrorEnvelope"]
    components.setdefault(
        "DownstreamErrorEnvelope",
        {
            **error_envelope,
            "title": "DownstreamErrorEnvelope",
            "description": "An error answered by a downstream: its status, and its envelope "
            "or `DOWNSTREAM_ERROR` with its body in `error.details`.",
            "properties": {
                **error_envelope["properties"],
                "error": {"$ref": REF.format(model="DownstreamErrorInfo")},
            },
        },
    )


def _routes(app: FastAPI) -> Iterator[APIRoute]:
    """The app's API routes as included (prefix and router dependencies applied)."""
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield cast(APIRoute, context)  # a context answers as its route, as included


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _can_refuse(field: Any, in_path: bool) -> bool:
    """False for a parameter validation always accepts: an unconstrained string that is a path
    segment or optional."""
    info = field.field_info
    plain = info.annotation in (str, str | None) and not info.metadata
    return not (plain and (in_path or not info.is_required()))


def route_errors(route: APIRoute, method: str) -> list[type[StudioError]]:
    """The errors `route` can answer a `method` request with, each once, in declaration order."""
    found: list[type[StudioError]] = [HeadersTooLarge]  # the edge's limit, before any route
    dependants = list(_dependants(route.dependant))
    if any(d.body_params for d in dependants):
        found += [PayloadTooLarge, ValidationFailed]
    elif any(
        _can_refuse(field, in_path=field in d.path_params)
        for d in dependants
        for field in (*d.path_params, *d.query_params, *d.header_params, *d.cookie_params)
    ):
        found.append(ValidationFailed)
    for d in dependants:
        if d.call is not None:
            found += declared(d.call).for_method(method)
    return list(dict.fromkeys(found))


def _by_status(errors: Iterable[type[StudioError]]) -> dict[int, list[tuple[str, str]]]:
    grouped: dict[int, dict[str, str]] = {}
    for error in errors:
        grouped.setdefault(error.status_code, {}).setdefault(error.code, error.message)
    return {status: sorted(codes.items()) for status, codes in sorted(grouped.items())}


def _is_error_envelope(response: dict[str, Any]) -> bool:
    media = response.get("content", {}).get("application/json", {})
    return media.get("schema", {}).get("$ref") in (
        REF.format(model="ErrorEnvelope"),
        REF.format(model="HTTPValidationError"),
    )


def _document_route_errors(schema: dict[str, Any], routes: Iterable[APIRoute]) -> None:
    """Each operation's error responses: exactly the codes its route declares."""
    for route in routes:
        item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for key in [k for k, r in responses.items() if _is_error_envelope(r)]:
                del responses[key]
            errors = route_errors(route, method)
            for status, codes in _by_status(errors).items():
                responses[str(status)] = error_response(status, codes)
            if any(e.status_code == 429 for e in errors):  # limited: every answer says how much
                for key, response in responses.items():
                    if key.startswith("2"):
                        response.setdefault("headers", {}).update(RATE_HEADERS)
            operation["responses"] = dict(sorted(responses.items()))


def _drop_validation_models(schema: dict[str, Any]) -> None:
    """FastAPI's `HTTPValidationError` is never answered: Studio's 422 is the envelope."""
    if REF.format(model="HTTPValidationError") not in repr(schema.get("paths", {})):
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                yield method, operation


def _add_security(schema: dict[str, Any], session_cookie: str) -> None:
    """The cookie's name in this stage, the CSRF header, and per operation: a read takes the
    Bearer token or the session cookie, a write the token or the cookie with the CSRF header."""
    schemes = schema["components"].setdefault("securitySchemes", {})
    if "SessionCookie" in schemes:
        schemes["SessionCookie"]["name"] = session_cookie
    schemes["CsrfHeader"] = {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "With the session cookie, on POST, PUT, PATCH and DELETE: the session's "
        "CSRF token (`csrf_token` of the cookie login, or `GET /auth/csrf`), equal to the CSRF "
        "cookie. The request's `Origin` (or `Referer`) must also be Studio's own or one of "
        "CORS_ALLOW_ORIGINS; else 403 `CSRF_FAILED`.",
    }
    for method, operation in _operations(schema):
        names = {name for requirement in operation.get("security", []) for name in requirement}
        if names & SIGNED_IN_SCHEMES:
            writes = method.upper() in UNSAFE_METHODS
            operation["security"] = [dict(r) for r in (WRITE_SECURITY if writes else READ_SECURITY)]


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
