"""Settings: one object, read once, named exactly as operators know the variables."""

from __future__ import annotations

import ipaddress
import sys
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["dev", "staging", "prod"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
MIN_SECRET_BYTES = 32
DEFAULT_METRICS_CIDRS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every Studio setting, from the environment and the layered env files."""

    model_config = SettingsConfigDict(
        env_file=("../.env", ".env.dev", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        use_attribute_docstrings=True,  # each field's docstring is its description
    )

    # Server
    environment: Environment = "dev"
    """The stage. `staging` and `prod` refuse unsafe settings at start-up (see above)."""
    app_host: str = "127.0.0.1"
    """Address `studio serve` listens on (`0.0.0.0` in the image)."""
    app_port: int = Field(8000, ge=1, le=65535)
    """Port `studio serve` listens on."""
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Lowest level logged."""
    log_dir: Path = Path("logs")
    """Directory of `error.log` (errors only, 10 MB rotation, 10-day retention)."""
    log_json: bool | None = None
    """JSON log lines on (`true`) or off (`false`); unset: JSON outside dev."""
    run_migrations: bool = False
    """Upgrade the database on boot (advisory-locked on PostgreSQL, so one of several instances
    migrates).
    """
    api_prefix: str = "/api/v1"
    """Prefix of every API route."""
    public_base_url: str | None = None
    """Studio's public origin (`https://studio.example.com`): what downstreams get as
    `X-Forwarded-Proto`/`-Host`. Unset: the scheme and host a trusted proxy stated, else none;
    never the client's `Host`.
    """
    docs_enabled: bool | None = None
    """Serve `/docs`, `/redoc` and `/openapi.json`; unset: in dev only. Refused outside dev."""
    workers: int = Field(1, ge=1, le=64)
    """uvicorn worker processes (`studio serve --workers`). More than one needs a shared Redis;
    `/metrics` then sums them through `PROMETHEUS_MULTIPROC_DIR`.
    """
    pid_file: Path = Path("var/studio.pid")
    """Where `studio serve` writes its process id while it runs, for `studio reload` (which
    sends it `SIGHUP`).
    """

    # Database
    database_url: str | None = None
    """`postgresql://user:pass@host:5432/db` (the asyncpg driver is chosen for you). Unset in dev:
    the embedded SQLite file. Required outside dev.
    """
    postgres_pool_size: int = Field(10, ge=1, le=200)
    """Database connections kept open per process."""
    postgres_max_overflow: int = Field(10, ge=0, le=200)
    """Extra database connections a process may open under load."""
    embedded_database_path: Path = Path("var/studio.db")
    """The SQLite file of an embedded dev run (no `DATABASE_URL`)."""

    # Redis
    redis_host: str | None = None
    """Standalone Redis host. Unset in dev (and no `REDIS_URL`): an in-process stand-in. Required
    outside dev (or `REDIS_URL`).
    """
    redis_port: int = Field(6379, ge=1, le=65535)
    """Standalone Redis port."""
    redis_db: int = Field(0, ge=0)
    """Standalone Redis database number."""
    redis_password: SecretStr | None = None
    """Standalone Redis password."""
    redis_max_connections: int = Field(10, ge=1, le=10_000)
    """Redis pool size per process (blocking pool; 5 retries with jittered backoff). On a cluster
    per node, where the pool does not wait, so a burst beyond it answers 503. The session
    cache's subscriber has a client of its own (at most 2 connections).
    """
    redis_url: str | None = None
    """Instead of `REDIS_HOST`: `redis://`, `rediss://`,
    `redis+sentinel://h1:26379,h2:26379/mymaster/0` or `redis+cluster://host:7000`.
    """
    redis_key_prefix: str = "studio:"
    """Prefix of every Redis key Studio writes."""

    # Auth
    jwt_secret_key: SecretStr | None = None
    """HMAC secret of the tokens, at least 32 bytes; required outside dev (dev has a fixed
    default).
    """
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    """The one signing algorithm accepted."""
    jwt_audience: str = "sentinel-studio"
    """`aud` claim written and required."""
    jwt_issuer: str = "studio"
    """`iss` claim written and required."""
    jwt_access_token_expire_seconds: int = Field(900, ge=30, le=86_400)
    """Access token lifetime (also a cookie session's grant)."""
    jwt_refresh_token_expire_seconds: int = Field(1_209_600, ge=60, le=31_536_000)
    """Refresh token lifetime; a session idle this long ends."""
    session_max_lifetime_seconds: int = Field(43_200, ge=60, le=31_536_000)
    """A session ends this long after its login however often it is refreshed (then 401
    `SESSION_EXPIRED`); no token or cookie outlives it.
    """
    session_cache_seconds: float = Field(5.0, ge=0, le=5)
    """How long a session check may be served from the per-process cache, invalidated through Redis
    pub/sub; `0` reads Redis on every request (invalidations are still published: an open
    WebSocket closes when its session ends). Capped: it bounds how long a lost invalidation
    can last.
    """

    # Network
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated browser origins allowed to call Studio (and to send cookie-session writes);
    `*` is refused outside dev.
    """
    security_hsts_max_age: int = Field(31_536_000, ge=0)
    """`Strict-Transport-Security` max-age over HTTPS."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated IPs or CIDRs of the proxies whose `X-Forwarded-For` is believed (the
    rightmost untrusted hop is the client).
    """
    metrics_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_METRICS_CIDRS)
    )
    """Comma-separated IPs or CIDRs whose TCP peers may read `/metrics`; others get 404
    `NOT_FOUND`. Default: loopback and private ranges.
    """
    max_request_header_bytes: int = Field(16_384, ge=1024)
    """Largest request header block (431 beyond)."""
    max_json_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest JSON body on Studio's own routes (413 beyond)."""

    # Rate limits
    rate_limit_enabled: bool = True
    """Turn the login and register rate limits off (tests, load runs)."""
    rate_limit_login_attempts: int = Field(10, ge=1)
    """Logins allowed per window, per client IP and per email."""
    rate_limit_login_window: int = Field(60, ge=1)
    """Login window, in seconds."""
    rate_limit_register_attempts: int = Field(5, ge=1)
    """Registrations allowed per window, per client IP."""
    rate_limit_register_window: int = Field(3600, ge=1)
    """Register window, in seconds."""
    rate_limit_ipv6_prefix: int = Field(64, ge=1, le=128)
    """IPv6 clients are counted per network of this prefix length (anyone holds a /64); IPv4 per
    address.
    """
    proxy_max_uploads_per_user: int = Field(2, ge=1, le=1000)
    """Streamed (non-replayable) proxy uploads one user may have in flight at once, per process;
    more: 429 `RATE_LIMITED`.
    """
    websocket_max_per_user: int = Field(20, ge=1, le=10_000)
    """Open WebSockets one user may hold across every instance (counted in Redis); more: 429
    `RATE_LIMITED` at the upgrade. Redis down at the upgrade: 503 `DEPENDENCY_UNAVAILABLE`.
    """
    websocket_check_interval: float = Field(20.0, gt=0, le=300)
    """Seconds between re-checks of every open WebSocket's session and permission (each session
    change is also checked at once) and renewals of its per-user slot.
    """
    websocket_ping_interval: float = Field(20.0, gt=0, le=300)
    """Seconds between the pings Studio sends a service on an idle WebSocket."""

    # Service registry
    service_config_path: Path = Path("config/services.yaml")
    """The service registry."""
    service_overlay_path: Path | None = None
    """The stage overlay deep-merged over the registry when present; unset:
    `deployment/config/{ENVIRONMENT}.yml`.
    """
    service_overlay_ssm_parameter: str | None = Field(
        None, min_length=2, max_length=1011, pattern=r"^/[A-Za-z0-9_.\-/]+$"
    )
    """An SSM parameter (String or SecureString) holding the stage overlay, read instead of
    `SERVICE_OVERLAY_PATH`: a deployed stack changes its registry there, then reloads.
    """
    service_config_reload_interval: float | None = Field(None, gt=0, le=86400)
    """Seconds between checks of the registry (base file and overlay) for a change, which
    reloads the registry in every worker; unset: no watch (`SIGHUP` or `studio reload` still
    reload it).
    """
    service_health_check_enabled: bool = False
    """Probe every downstream's `health_path` in the background."""
    service_health_check_interval: float = Field(30.0, gt=0)
    """Seconds between background probes."""
    ssm_cache_ttl: float = Field(300.0, ge=0)
    """Seconds SSM credentials are cached (a downstream 401 refreshes them at once)."""
    aws_region: str | None = None
    """Region of SSM; unset: the AWS SDK's own default (`AWS_DEFAULT_REGION`, the profile)."""

    # Audit
    audit_retention_days: int = Field(90, ge=1)
    """Days of audit rows kept by `studio audit purge`."""

    # Runtime
    runtime_corked_writes: bool = True
    """`studio serve` joins a connection's writes of one event-loop step, so a small answer
    leaves in one write; `false`: uvicorn's own httptools protocol.
    """
    runtime_fast_lane: bool = True
    """Proxied requests go through Studio's middleware straight to the proxy, past FastAPI's
    inner layers and route matching; `false`: FastAPI's full stack for every request.
    """
    runtime_gc_freeze: bool = True
    """Move what start-up built out of the cyclic GC's reach (`gc.freeze`), which takes the
    long full collections out of the p99; `false`: the GC walks everything.
    """

    @field_validator("cors_allow_origins", "trusted_proxies", "metrics_allow_cidrs", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        scheme, sep, host = value.partition("://")
        if not sep or scheme not in ("http", "https") or not host or "/" in host:
            raise ValueError("PUBLIC_BASE_URL must be an origin such as https://studio.example.com")
        return value

    @field_validator("api_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = "/" + value.strip("/")
        return "" if value == "/" else value

    @field_validator("trusted_proxies", "metrics_allow_cidrs")
    @classmethod
    def _networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                name = (info.field_name or "").upper()
                raise ValueError(f"{name}: {item!r} is not an IP address or CIDR") from exc
        return value

    @model_validator(mode="after")
    def _one_overlay(self) -> Self:
        if self.service_overlay_ssm_parameter and self.service_overlay_path is not None:
            raise ValueError(
                "SERVICE_OVERLAY_PATH and SERVICE_OVERLAY_SSM_PARAMETER name two overlays: set one"
            )
        return self

    @model_validator(mode="after")
    def _safe_outside_dev(self) -> Self:
        problems: list[str] = []
        if self.environment != "dev":
            secret = self.jwt_secret_key.get_secret_value() if self.jwt_secret_key else ""
            if not secret:
                problems.append("JWT_SECRET_KEY is required outside dev")
            elif len(secret.encode()) < MIN_SECRET_BYTES:
                problems.append(f"JWT_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
            elif secret == DEV_JWT_SECRET:
                problems.append("JWT_SECRET_KEY is the development default")
            if "*" in self.cors_allow_origins:
                problems.append("CORS_ALLOW_ORIGINS must list origins, not '*'")
            if self.docs_enabled:
                problems.append("DOCS_ENABLED must be false outside dev (/docs is dev only)")
            if not self.database_url:
                problems.append("DATABASE_URL is required outside dev (no embedded SQLite)")
            if not (self.redis_host or self.redis_url):
                problems.append("REDIS_HOST or REDIS_URL is required outside dev")
        if problems:
            raise ValueError(f"unsafe {self.environment} configuration: " + "; ".join(problems))
        return self

    # Derived values, computed once.

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    @property
    def show_docs(self) -> bool:
        return self.is_dev if self.docs_enabled is None else self.docs_enabled and self.is_dev

    @property
    def json_logs(self) -> bool:
        return (not self.is_dev) if self.log_json is None else self.log_json

    @property
    def embedded(self) -> bool:
        """Dev run without DATABASE_URL or Redis settings: SQLite and an in-process Redis."""
        return self.is_dev and not self.database_url and not (self.redis_host or self.redis_url)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.embedded_database_path}"

    @property
    def redis_in_process(self) -> bool:
        return not (self.redis_host or self.redis_url)

    @property
    def jwt_secret(self) -> str:
        if self.jwt_secret_key is not None:
            return self.jwt_secret_key.get_secret_value()
        return DEV_JWT_SECRET  # only reachable in dev: validated above

    @property
    def overlay_path(self) -> Path:
        return self.service_overlay_path or Path(f"deployment/config/{self.environment}.yml")

    @property
    def public_origin(self) -> tuple[str, str] | None:
        """(scheme, host) of PUBLIC_BASE_URL, when set."""
        if self.public_base_url is None:
            return None
        scheme, _, host = self.public_base_url.partition("://")
        return scheme, host

    @cached_property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies)

    @cached_property
    def metrics_networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.metrics_allow_cidrs)


def normalise_database_url(url: str) -> str:
    """Accept plain postgres:// URLs and give SQLAlchemy the async driver."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def explain(exc: ValidationError) -> str:
    """A readable, secret-free account of why the settings are invalid."""
    lines = ["Studio configuration is invalid:"]
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]).upper() or "settings"
        lines.append(f"  - {where}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def settings_or_exit() -> Settings:
    """The settings, or the explanation on stderr and exit status 2."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(explain(exc), file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return Settings()
