"""The proxy's routes in OpenAPI: one operation per explicit route, one path per wildcard service.

`documenter(prefix, registry)` is the `SchemaExtension` the app gives `core.openapi.install`.
"""

from __future__ import annotations

import re
from typing import Any

from app.core.envelope import Envelope
from app.core.openapi import (
    REF,
    SECURITY,
    SchemaExtension,
    add_model,
    codes_by_status,
    error_response,
    phrase,
)
from app.registry.schema import RegistryConfig, ServiceConfig


def documenter(prefix: str, registry: RegistryConfig) -> SchemaExtension:
    """Document `registry`'s services under `prefix`."""

    def extend(schema: dict[str, Any], components: dict[str, Any]) -> None:
        _add_proxy(schema, components, prefix, registry)

    return extend


PROXY_ERRORS = (400, 401, 403, 404, 408, 413, 429, 502, 503, 504)
PROXY_ERROR_CODES: dict[int, list[str]] = {
    400: ["INVALID_PATH"],
    401: ["UNAUTHORIZED", "TOKEN_EXPIRED", "TOKEN_INVALID", "SESSION_REVOKED"],
    403: ["FORBIDDEN", "CSRF_FAILED"],
    404: ["ROUTE_NOT_FOUND", "SERVICE_NOT_FOUND"],
    408: ["REQUEST_TIMEOUT"],
    413: ["PAYLOAD_TOO_LARGE"],
    429: ["RATE_LIMITED"],
    502: ["UPSTREAM_UNAVAILABLE"],
    503: ["CIRCUIT_OPEN", "UPSTREAM_BUSY", "CREDENTIALS_UNAVAILABLE", "DEPENDENCY_UNAVAILABLE"],
    504: ["UPSTREAM_TIMEOUT"],
}
WRITE_METHODS = ("post", "put", "patch")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _proxy_errors() -> dict[str, Any]:
    known = codes_by_status()
    responses: dict[str, Any] = {}
    for status in PROXY_ERRORS:
        messages = dict(known.get(status, []))
        codes = [(c, messages.get(c, phrase(status))) for c in PROXY_ERROR_CODES[status]]
        responses[str(status)] = error_response(status, codes)
    responses["default"] = {
        "description": "A downstream error: its status, code `DOWNSTREAM_ERROR`, its body in "
        "`error.details`",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorEnvelope")}}},
    }
    return responses


def _add_proxy(
    schema: dict[str, Any], components: dict[str, Any], prefix: str, registry: RegistryConfig
) -> None:
    """One operation per explicit route, one path per wildcard service (`{path}` is the rest)."""
    any_envelope = add_model(components, Envelope[Any])
    errors = _proxy_errors()
    paths: dict[str, Any] = schema.setdefault("paths", {})
    tags: list[dict[str, Any]] = schema.setdefault("tags", [])
    for name, service in sorted(registry.services.items()):
        tags.append({"name": name, "description": _service_text(name, service)})
        if service.mode == "explicit":
            for route in service.routes:
                method = route.method.lower()
                path = f"{prefix}/{name}{route.path}"
                params = [_path_param(p) for p in _PLACEHOLDER.findall(route.path)]
                permission = route.permission or service.permission_for(route.method)
                operation = _proxy_operation(
                    name, method, route.path, permission, route.envelope, any_envelope, errors
                )
                if params:
                    operation["parameters"] = params
                paths.setdefault(path, {})[method] = operation
        else:
            item: dict[str, Any] = {
                "parameters": [
                    _path_param("path", "The downstream path; it may contain `/`"),
                ]
            }
            for method in ("get", "post", "put", "patch", "delete"):
                permission = service.permission_for(method.upper())
                item[method] = _proxy_operation(
                    name, method, "/{path}", permission, True, any_envelope, errors, stream=True
                )
            paths[f"{prefix}/{name}/{{path}}"] = item


def _service_text(name: str, service: ServiceConfig) -> str:
    head = service.description or f"The {name} service"
    if service.mode == "explicit":
        return f"{head}, proxied: only the routes listed here are forwarded."
    return f"{head}, proxied: any path under `/{name}/` is forwarded (SSE and files stream)."


def _path_param(name: str, description: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "path", "required": True}
    param["schema"] = {"type": "string"}
    if description:
        param["description"] = description
    return param


def _proxy_operation(
    service: str,
    method: str,
    path: str,
    permission: str,
    enveloped: bool,
    any_envelope: str,
    errors: dict[str, Any],
    *,
    stream: bool = False,
) -> dict[str, Any]:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": any_envelope} if enveloped else {}}
    }
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    body = (
        "The downstream JSON in the envelope's `result` (an envelope from the downstream is "
        "passed as is)"
        if enveloped
        else "The downstream JSON, raw (no envelope)"
    )
    operation: dict[str, Any] = {
        "tags": [service],
        "summary": f"{method.upper()} {path}",
        "description": f"Proxied to {service}. Requires `{permission}`.",
        "operationId": f"proxy_{service}_{method}_{slug}",
        "security": SECURITY,
        "x-permission": permission,
        "responses": {"200": {"description": body, "content": content}, **errors},
    }
    if method in WRITE_METHODS:
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {}},
                "multipart/form-data": {"schema": {}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    return operation
