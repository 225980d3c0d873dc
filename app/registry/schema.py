"""The service registry's shape (CONTRACT.md §5), validated after the stage overlay is merged."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    field_validator,
    model_validator,
)

Method = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PERMISSION_PATTERN = r"^[a-z0-9_*]+(:[a-z0-9_*]+)?$"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Strict):
    connect: float = Field(5.0, gt=0, le=300)
    read: float = Field(60.0, gt=0, le=3600)
    write: float = Field(60.0, gt=0, le=3600)
    pool: float = Field(5.0, gt=0, le=300)


class CircuitBreakerConfig(Strict):
    failure_threshold: int = Field(5, ge=1, le=1000)
    open_seconds: float = Field(30.0, gt=0, le=3600)


class BasicAuthSSM(Strict):
    type: Literal["basic"]
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]+$")


class BasicAuthEnv(Strict):
    type: Literal["basic"]
    username_env: str = Field(pattern=ENV_NAME_PATTERN)
    password_env: str = Field(pattern=ENV_NAME_PATTERN)


class NoAuth(Strict):
    type: Literal["none"] = "none"


AuthConfig = BasicAuthSSM | BasicAuthEnv | NoAuth


def _auth_kind(value: Any) -> str | None:
    # Both Basic variants share `type: basic`, so pick the variant by its keys: a mistake is then
    # reported against the one variant meant, not as three unrelated union failures.
    if isinstance(value, BasicAuthSSM):
        return "ssm"
    if isinstance(value, BasicAuthEnv):
        return "env"
    if isinstance(value, NoAuth):
        return "none"
    if not isinstance(value, dict):
        return None
    kind = value.get("type", "none")
    if kind == "none":
        return "none"
    if kind == "basic":
        return "env" if "username_env" in value or "password_env" in value else "ssm"
    return None


AuthField = Annotated[
    Annotated[BasicAuthSSM, Tag("ssm")]
    | Annotated[BasicAuthEnv, Tag("env")]
    | Annotated[NoAuth, Tag("none")],
    Discriminator(
        _auth_kind,
        custom_error_type="auth_type",
        custom_error_message=(
            "auth must be {type: basic, ssm_prefix}, {type: basic, username_env, password_env} "
            "or {type: none}"
        ),
    ),
]


class Permissions(Strict):
    read: str = Field(pattern=PERMISSION_PATTERN)
    write: str = Field(pattern=PERMISSION_PATTERN)


class Quota(Strict):
    """Per-user request quota: `limit` requests per `window` seconds."""

    limit: int = Field(ge=1)
    window: int = Field(ge=1)


class WebSocketLimits(Strict):
    """Limits of the WebSockets relayed to a service."""

    # At most the ASGI server's own frame limit (uvicorn's ws_max_size, 16 MiB).
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1, le=16 * 1024 * 1024)
    idle_timeout: float = Field(300.0, gt=0)  # seconds without a message either way


class RouteConfig(Strict):
    method: Method
    path: str = Field(pattern=r"^/[^?#]*$")
    # default: the service's read or write permission
    permission: str | None = Field(None, pattern=PERMISSION_PATTERN)
    envelope: bool = True
    quota: Quota | None = None
    websocket: bool = False  # a WebSocket upgrade is accepted here (a GET route)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _template(cls, value: str) -> str:
        # A template is matched segment by segment, so every segment must be usable: no empty,
        # `.` or `..` segment, and each `{name}` a well-formed identifier.
        if value != "/":
            for segment in value[1:].split("/"):
                if segment in ("", ".", ".."):
                    raise ValueError(f"path {value!r} has an empty, '.' or '..' segment")
        for name in _PLACEHOLDER.findall(value):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"path {value!r}: placeholder {{{name}}} is not an identifier")
        rest = _PLACEHOLDER.sub("", value)
        if "{" in rest or "}" in rest:
            raise ValueError(f"path {value!r} has an unbalanced brace")
        return value

    @model_validator(mode="after")
    def _websocket_is_get(self) -> RouteConfig:
        if self.websocket and self.method != "GET":
            raise ValueError(f"route {self.method} {self.path}: a WebSocket route is a GET")
        return self


class ServiceConfig(Strict):
    base_url: HttpUrl
    mode: Literal["explicit", "wildcard"]
    health_path: str = Field("/health", pattern=r"^/")
    auth: AuthField = Field(default_factory=NoAuth)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=0)
    max_connections: int = Field(100, ge=1, le=10_000)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    permissions: Permissions
    routes: list[RouteConfig] = Field(default_factory=list)
    quota: Quota | None = None
    description: str | None = None
    # Upgrades accepted under the service (explicit mode: at its GET routes; a route may also
    # say so alone); anything else is 404 to an upgrade.
    websocket: bool = False
    websocket_limits: WebSocketLimits = Field(default_factory=WebSocketLimits)

    @model_validator(mode="after")
    def _routes_match_mode(self) -> ServiceConfig:
        if self.mode == "explicit" and not self.routes:
            raise ValueError("an explicit service needs at least one route")
        seen: set[tuple[str, str]] = set()
        for route in self.routes:
            key = (route.method, route.path)
            if key in seen:
                raise ValueError(f"route {route.method} {route.path} is listed twice")
            seen.add(key)
        return self

    def permission_for(self, method: str) -> str:
        """The service-level permission for a method class (read or write)."""
        return self.permissions.read if method in READ_METHODS else self.permissions.write


class DashboardSource(Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    service: str
    path: str = Field(pattern=r"^/")
    timeout: float = Field(3.0, gt=0, le=60)
    permission: str | None = Field(None, pattern=PERMISSION_PATTERN)


class DashboardConfig(Strict):
    sources: list[DashboardSource] = Field(default_factory=list)
    cache_seconds: float = Field(10.0, ge=0, le=3600)


class RegistryConfig(Strict):
    services: dict[str, ServiceConfig]
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in value:
            if not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
                raise ValueError(
                    f"service name {name!r} must be lower-case letters, digits, - or _"
                )
        return value

    @model_validator(mode="after")
    def _sources_exist(self) -> RegistryConfig:
        for source in self.dashboard.sources:
            service = self.services.get(source.service)
            if service is None:
                raise ValueError(
                    f"dashboard source {source.key!r} names unknown service {source.service!r}"
                )
            # An explicit service answers only its listed routes; a source outside them would
            # reach a path the registry says does not exist.
            path = source.path.split("?", 1)[0]
            if service.mode == "explicit" and not any(
                route.method == "GET" and _template_matches(route.path, path)
                for route in service.routes
            ):
                raise ValueError(
                    f"dashboard source {source.key!r}: GET {path} is not a route of "
                    f"{source.service!r}"
                )
        return self


def _template_matches(template: str, path: str) -> bool:
    """Whether a concrete path fits a route template, segment by segment."""
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(have) and all(
        w == h or (bool(_PLACEHOLDER.fullmatch(w)) and h != "")
        for w, h in zip(want, have, strict=True)
    )
