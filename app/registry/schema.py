"""The service registry's shape (CONTRACT.md §5), validated after the stage overlay is merged."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

Method = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


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
    username_env: str
    password_env: str


class NoAuth(Strict):
    type: Literal["none"] = "none"


AuthConfig = BasicAuthSSM | BasicAuthEnv | NoAuth


class Permissions(Strict):
    read: str = Field(pattern=r"^[a-z0-9_*]+(:[a-z0-9_*]+)?$")
    write: str = Field(pattern=r"^[a-z0-9_*]+(:[a-z0-9_*]+)?$")


class Quota(Strict):
    """Per-user request quota: `limit` requests per `window` seconds."""

    limit: int = Field(ge=1)
    window: int = Field(ge=1)


class RouteConfig(Strict):
    method: Method
    path: str = Field(pattern=r"^/[^?#]*$")
    permission: str | None = None  # default: the service's read or write permission
    envelope: bool = True
    quota: Quota | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ServiceConfig(Strict):
    base_url: HttpUrl
    mode: Literal["explicit", "wildcard"]
    health_path: str = Field("/health", pattern=r"^/")
    auth: AuthConfig = Field(default_factory=NoAuth)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=0)
    max_connections: int = Field(100, ge=1, le=10_000)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    permissions: Permissions
    routes: list[RouteConfig] = Field(default_factory=list)
    quota: Quota | None = None
    description: str | None = None

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
    permission: str | None = None


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
                raise ValueError(f"service name {name!r} must be lower-case letters, digits, - or _")
        return value

    @model_validator(mode="after")
    def _sources_exist(self) -> RegistryConfig:
        for source in self.dashboard.sources:
            if source.service not in self.services:
                raise ValueError(f"dashboard source {source.key!r} names unknown service {source.service!r}")
        return self
