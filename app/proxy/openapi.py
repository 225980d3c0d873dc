"""The proxy's operations in OpenAPI, shaped so that generated clients can call every one.

`documenter(prefix, registry)` is the `SchemaExtension` the app gives `core.openapi.install`.
The shape was chosen by what the generators do with it (openapi-python-client 0.29,
openapi-typescript 7 with openapi-fetch 0.17, Swagger UI):

- Operations. An explicit service has one operation per registry route, a wildcard service one
  path `{prefix}/<service>/{path}` with GET, POST, PUT, PATCH and DELETE. Ids are
  `proxy.<service>.<method><Path>` in camelCase, a placeholder naming one item of the collection
  before it (`GET /documents/{document_id}` is `proxy.nexus.getDocument`); a wildcard service's
  are `proxy.<service>.<method>` (`proxy.zen.get`). One tag per service.
- `{path}` of a wildcard may hold `/`. Clients percent-encode it (`chat%2Fhistory`); Studio reads
  an encoded `/` as a separator after the same traversal checks (`app/proxy/pathguard.py`), so
  the downstream receives `/chat/history`.
- Query string: every operation has one parameter `query`, `style: form, explode: true`, schema
  `ProxyQuery` (an object of strings): its pairs go out as `?k=v&k2=v2`. openapi-python-client
  and Swagger UI send it so as they are; openapi-fetch must be created with
  `querySerializer: {object: {style: "form", explode: true}}` (its own default for an object
  is deepObject, `query[k]=v`) and is then called with `params: {query: {query: {k: "v"}}}`.
- Request bodies (POST, PUT, PATCH), optional, by media type: `application/json` `ProxyJsonBody`
  (a JSON object), `multipart/form-data` `ProxyUpload` (a binary `file` part and any other
  fields), `application/octet-stream` (binary). openapi-python-client chooses by the type of
  the body it is given (`ProxyJsonBody`, `ProxyUpload`, `File`); openapi-fetch sends JSON, or a
  `FormData` as it is.
- Responses. openapi-python-client reads a status as the first media type it knows (JSON:
  `response.json()`, `text/*`: text, octet-stream: bytes) and fails on any other answer;
  openapi-fetch reads JSON unless the call says `parseAs` ("stream", "text", "blob").
  - An explicit route answers JSON: its 200 is `application/json` only, the envelope
    (`EnvelopeAny`) or, with `envelope: false`, the downstream's JSON as it is; a route whose
    path ends in `/download` answers a file: `application/octet-stream` only.
  - A wildcard path may answer JSON, SSE or a file, and Studio cannot know which before the
    downstream answers. Its 200 lists `application/octet-stream` first, so openapi-python-client
    returns the body's bytes (`File`) whatever came (JSON, events, a file) instead of failing on
    all but one; then `application/json` (the envelope, for clients that pick the media type,
    e.g. `createClient<paths, "application/json">`), then `text/event-stream`.
  - Media types that stream carry `x-stream: true` (read them with `parseAs: "stream"`).
  - Errors: each status lists the codes the proxy can answer with it (`proxy_errors`); its
    schema is `DownstreamErrorEnvelope`, because a downstream's error passes with its own
    status and may carry its own envelope's code; `default` is any other downstream error.
- Security: reads take the Bearer token or the session cookie, writes (POST, PUT, PATCH,
  DELETE) the token or the cookie with `X-CSRF-Token` (the proxy checks CSRF through the same
  `identify` as every route).
"""

from __future__ import annotations

import re
from typing import Any

from app.core.envelope import Envelope
from app.core.errors import (
    Forbidden,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimeout,
    StudioError,
)
from app.core.openapi import (
    READ_SECURITY,
    REF,
    WRITE_SECURITY,
    SchemaExtension,
    Security,
    add_model,
    error_response,
)
from app.core.raises import declared
from app.credentials.errors import CredentialsUnavailable
from app.identity.dependencies import current_principal
from app.proxy.errors import (
    CircuitOpen,
    InvalidPath,
    RouteNotFound,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.ratelimit.errors import RateLimited
from app.registry.schema import READ_METHODS, RegistryConfig, RouteConfig, ServiceConfig

WILDCARD_METHODS = ("get", "post", "put", "patch", "delete")
BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))

# What each stage of `forwarder.forward` can refuse a request with, in the order they run;
# `identify` answers what the authenticator declares on `current_principal` (app/auth/answers.py).
EDGE: tuple[type[StudioError], ...] = (HeadersTooLarge,)  # the edge's limit, before routing
MATCH: tuple[type[StudioError], ...] = (InvalidPath,)
MATCH_EXPLICIT: tuple[type[StudioError], ...] = (RouteNotFound,)
AUTHORISE: tuple[type[StudioError], ...] = (Forbidden,)
QUOTA: tuple[type[StudioError], ...] = (RateLimited,)  # route quota; uploads in flight (writes)
BODY: tuple[type[StudioError], ...] = (PayloadTooLarge, RequestTimeout, RateLimited)  # uploads
EXCHANGE: tuple[type[StudioError], ...] = (
    CircuitOpen,
    CredentialsUnavailable,
    UpstreamBusy,
    UpstreamUnavailable,
    UpstreamTimeout,
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WORD = re.compile(r"[A-Za-z0-9]+")
_PLURAL_ES = ("ches", "shes", "sses", "xes", "zes")

QUERY_MODEL = "ProxyQuery"
JSON_BODY_MODEL = "ProxyJsonBody"
UPLOAD_MODEL = "ProxyUpload"
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
MODELS: dict[str, dict[str, Any]] = {
    QUERY_MODEL: {
        "title": QUERY_MODEL,
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "The query string, forwarded as it is: each pair is `name=value`.",
    },
    JSON_BODY_MODEL: {
        "title": JSON_BODY_MODEL,
        "type": "object",
        "additionalProperties": True,
        "description": "A JSON object, forwarded as it is.",
    },
    UPLOAD_MODEL: {
        "title": UPLOAD_MODEL,
        "type": "object",
        "properties": {"file": {**BINARY, "description": "The file"}},
        "additionalProperties": True,
        "description": "A multipart form, streamed to the downstream as it is: a `file` part "
        "and any other fields the service reads.",
    },
}


def documenter(prefix: str, registry: RegistryConfig) -> SchemaExtension:
    """Document `registry`'s services under `prefix`."""

    def extend(schema: dict[str, Any], components: dict[str, Any]) -> None:
        _add_proxy(schema, components, prefix, registry)

    return extend


def proxy_errors(method: str, *, parameters: bool, quota: bool) -> list[type[StudioError]]:
    """The errors the proxy can answer a `method` request of an operation with, each once.

    `parameters`: an explicit route with path parameters (a value that is empty or holds `/`
    matches no route); `quota`: a quota applies to the operation."""
    upper = method.upper()
    found = [*EDGE, *declared(current_principal).for_method(upper), *MATCH]
    found += [*(MATCH_EXPLICIT if parameters else ()), *AUTHORISE, *(QUOTA if quota else ())]
    found += [*(BODY if upper in BODY_METHODS else ()), *EXCHANGE]
    return list(dict.fromkeys(found))


def operation_id(service: str, method: str, template: str | None) -> str:
    """`proxy.<service>.<camelCase>`: the method, then the path's words; `{x}` after a plural
    names one of it (`/documents/{id}` -> `Document`). `template` None: a wildcard's operation."""
    words = [method.lower()]
    for segment in (template or "").strip("/").split("/"):
        placeholder = _PLACEHOLDER.fullmatch(segment)
        if placeholder is None:
            words += _WORD.findall(segment)
        elif len(words) > 1 and _singular(words[-1]) != words[-1]:
            words[-1] = _singular(words[-1])
        else:
            words += ["by", *_WORD.findall(placeholder[1])]
    return f"proxy.{_camel(_WORD.findall(service))}.{_camel(words)}"


def _singular(word: str) -> str:
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if lower.endswith(_PLURAL_ES):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(word) > 1:
        return word[:-1]
    return word


def _camel(words: list[str]) -> str:
    head, *rest = [w.lower() for w in words] or ["x"]
    if not head[0].isalpha():
        head = "n" + head
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _add_proxy(
    schema: dict[str, Any], components: dict[str, Any], prefix: str, registry: RegistryConfig
) -> None:
    """One operation per explicit route, one path per wildcard service (`{path}` is the rest)."""
    envelope = add_model(components, Envelope[Any])
    for name, model in MODELS.items():
        components.setdefault(name, model)
    # Installed by core.openapi before any extension runs.
    shapes = _Shapes(envelope, REF.format(model="DownstreamErrorEnvelope"))
    paths: dict[str, Any] = schema.setdefault("paths", {})
    tags: list[dict[str, Any]] = schema.setdefault("tags", [])
    used: set[str] = set()
    for name, service in sorted(registry.services.items()):
        tags.append({"name": name, "description": _service_text(name, service)})
        if service.mode == "explicit":
            for route in service.routes:
                path = f"{prefix}/{name}{route.path}"
                operation = shapes.explicit(name, service, route)
                operation["operationId"] = _unique(operation["operationId"], used)
                paths.setdefault(path, {})[route.method.lower()] = operation
        else:
            item: dict[str, Any] = {"parameters": [_path_param("path", _WILDCARD_PATH)]}
            for method in WILDCARD_METHODS:
                operation = shapes.wildcard(name, service, method.upper())
                operation["operationId"] = _unique(operation["operationId"], used)
                item[method] = operation
            paths[f"{prefix}/{name}/{{path}}"] = item


_WILDCARD_PATH = (
    "The downstream path, without the leading `/`; it may contain `/` (percent-encoded as "
    "`%2F` by clients, read as a separator)"
)


def _unique(candidate: str, used: set[str]) -> str:
    found, n = candidate, 2
    while found in used:
        found, n = f"{candidate}{n}", n + 1
    used.add(found)
    return found


class _Shapes:
    """Builds the operations; holds the component references they share."""

    def __init__(self, envelope: str, failure: str) -> None:
        self.envelope = envelope
        self.failure = failure

    def explicit(self, service: str, config: ServiceConfig, route: RouteConfig) -> dict[str, Any]:
        permission = route.permission or config.permission_for(route.method)
        if route.path.rstrip("/").endswith("/download"):
            content, text = self._file(), "The file, streamed as the downstream sends it"
        elif route.envelope:
            content, text = self._json(self.envelope), _ENVELOPED
        else:
            content, text = {"application/json": {"schema": {}}}, "The downstream JSON, raw"
        params = [_path_param(p) for p in _PLACEHOLDER.findall(route.path)]
        quota = (route.quota or config.quota) is not None
        return self._operation(
            service,
            route.method,
            route.path,
            permission,
            {"description": text, "content": content},
            params,
            proxy_errors(route.method, parameters=bool(params), quota=quota),
        )

    def wildcard(self, service: str, config: ServiceConfig, method: str) -> dict[str, Any]:
        permission = config.permission_for(method)
        content = {
            **self._file(),
            **self._json(self.envelope),
            "text/event-stream": {"schema": {"type": "string"}, "x-stream": True},
        }
        ok = {"description": _WILDCARD_ANSWER, "content": content}
        quota = config.quota is not None or any(r.quota for r in config.routes)
        errors = proxy_errors(method, parameters=False, quota=quota)
        return self._operation(service, method, None, permission, ok, [], errors)

    def _operation(
        self,
        service: str,
        method: str,
        template: str | None,
        permission: str,
        ok: dict[str, Any],
        params: list[dict[str, Any]],
        errors: list[type[StudioError]],
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "tags": [service],
            "summary": f"{method} {template or '/{path}'}",
            "description": f"Proxied to {service}. Requires `{permission}`.",
            "operationId": operation_id(service, method, template),
            "security": _security(method),
            "x-permission": permission,
            "parameters": [*params, _query_param()],
            "responses": {
                "200": ok,
                "204": {"description": "The downstream answered 204: no body"},
                "2XX": {
                    **ok,
                    "description": "Another success status of the downstream (201, "
                    "202 ...): the body as with 200",
                },
                **self._errors(errors),
            },
        }
        if method in BODY_METHODS:
            operation["requestBody"] = _request_body()
        return operation

    def _errors(self, errors: list[type[StudioError]]) -> dict[str, Any]:
        grouped: dict[int, dict[str, str]] = {}
        for error in errors:
            grouped.setdefault(error.status_code, {}).setdefault(error.code, error.message)
        responses: dict[str, Any] = {}
        for status, codes in sorted(grouped.items()):
            response = error_response(status, sorted(codes.items()))
            response["description"] += "; or the downstream's own error with this status"
            response["content"]["application/json"]["schema"] = {"$ref": self.failure}
            responses[str(status)] = response
        responses["default"] = {
            "description": "A downstream error: its status, and its envelope or code "
            "`DOWNSTREAM_ERROR` with its body in `error.details`",
            "content": {"application/json": {"schema": {"$ref": self.failure}}},
        }
        return responses

    @staticmethod
    def _json(ref: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": ref}}}

    @staticmethod
    def _file() -> dict[str, Any]:
        return {"application/octet-stream": {"schema": dict(BINARY), "x-stream": True}}


_ENVELOPED = (
    "The downstream JSON in the envelope's `result` (an envelope from the downstream is passed "
    "as is)"
)
_WILDCARD_ANSWER = (
    "What the downstream answered. JSON comes in the envelope (`application/json`); server-sent "
    "events (`text/event-stream`) and files stream through untouched. Listed bytes first: a "
    "client that cannot tell in advance reads the bytes and looks at `Content-Type`."
)


def _security(method: str) -> Security:
    return [dict(r) for r in (READ_SECURITY if method in READ_METHODS else WRITE_SECURITY)]


def _query_param() -> dict[str, Any]:
    return {
        "name": "query",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "description": "The query string, forwarded byte for byte: each pair `name=value`.",
        "schema": {"$ref": REF.format(model=QUERY_MODEL)},
    }


def _request_body() -> dict[str, Any]:
    return {
        "required": False,
        "description": "Forwarded as it is, streamed; over the service's `max_body_bytes`: 413.",
        "content": {
            "application/json": {"schema": {"$ref": REF.format(model=JSON_BODY_MODEL)}},
            "multipart/form-data": {"schema": {"$ref": REF.format(model=UPLOAD_MODEL)}},
            "application/octet-stream": {"schema": dict(BINARY)},
        },
    }


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
