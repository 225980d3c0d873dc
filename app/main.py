"""The ASGI application: `app.main:app`, built by `create_app()`."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from app import routers
from app.auth.cookies import CookiePolicy
from app.core import handlers, openapi
from app.core.config import Settings, settings_or_exit
from app.core.edge import RequestLimitsMiddleware, SecurityHeadersMiddleware
from app.core.edge import cors as cors_middleware
from app.core.envelope import EnvelopeResponse
from app.core.logging import configure_logging
from app.core.middleware import EnvelopeMiddleware, RequestContextMiddleware
from app.docs import router as docs_router
from app.lifespan import build_lifespan
from app.observability import tracing
from app.observability.metrics import MetricsMiddleware
from app.proxy import openapi as proxy_openapi
from app.registry.live import LoadedRegistry, load_versioned
from app.registry.loader import RegistryError
from app.registry.schema import RegistryConfig
from app.runtime.lane import StudioApp

OPENAPI_PATH = "/openapi.json"


def proxied_prefixes(settings: Settings, registry: RegistryConfig) -> tuple[str, ...]:
    """Paths whose bodies the forwarder limits per service (they stream, often large)."""
    return tuple(f"{settings.api_prefix}/{name}/" for name in registry.services)


def install_middleware(app: FastAPI, settings: Settings, registry: RegistryConfig) -> None:
    """Studio's middleware, in its order (tests build apps with exactly this stack)."""
    # Added inner first: RequestContext wraps all but the security headers, so every response
    # gets its id.
    app.add_middleware(EnvelopeMiddleware, raw_paths=(OPENAPI_PATH, "/metrics"))
    app.add_middleware(
        RequestLimitsMiddleware,
        max_header_bytes=settings.max_request_header_bytes,
        max_body_bytes=settings.max_json_body_bytes,
        exempt_prefixes=proxied_prefixes(settings, registry),
    )
    if settings.cors_allow_origins:
        app.add_middleware(cors_middleware, settings=settings)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=settings.trusted_networks,
        public_origin=settings.public_origin,
    )
    # Outermost: the request context's own last-resort 500 carries these headers too.
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_max_age=settings.security_hsts_max_age,
        trust_forwarded_proto=bool(settings.trusted_proxies),
    )


def follow_registry(
    app: FastAPI, settings: Settings, extensions: list[openapi.SchemaExtension]
) -> Callable[[LoadedRegistry], None]:
    """What follows a registry reload outside the proxy: the OpenAPI schema (rebuilt on its
    next read) and the body limit's exemption of proxied paths (each service limits its own)."""

    def follow(loaded: LoadedRegistry) -> None:
        extensions[0] = proxy_openapi.documenter(settings.api_prefix, loaded.config)
        app.openapi_schema = None
        exempt = proxied_prefixes(settings, loaded.config)
        for middleware in app.user_middleware:  # a stack built later reads these
            if getattr(middleware, "cls", None) is RequestLimitsMiddleware:
                middleware.kwargs["exempt_prefixes"] = exempt
        for layer in _layers(app.middleware_stack, getattr(app, "_lane", None)):
            if isinstance(layer, RequestLimitsMiddleware):
                layer.exempt = exempt

    return follow


def _layers(*roots: Any) -> Iterable[Any]:
    """Every ASGI layer reachable from `roots` (the built stack and the fast lane)."""
    seen: set[int] = set()
    todo = [r for r in roots if r is not None]
    while todo:
        layer = todo.pop()
        if id(layer) in seen or isinstance(layer, Middleware):
            continue
        seen.add(id(layer))
        yield layer
        # Each layer names the next `app`; the lane's switch names both of its ways.
        todo.extend(
            inner
            for name in ("app", "lane", "rest")
            if (inner := getattr(layer, name, None)) is not None and callable(inner)
        )


def create_app(settings: Settings | None = None, tracer_provider: Any = None) -> FastAPI:
    """Build Studio for the given (or the process) settings; traced when OTel is configured."""
    settings = settings or settings_or_exit()
    configure_logging(settings)
    docs = settings.show_docs
    app = StudioApp(
        title="Studio",
        summary="Backend-for-Frontend gateway of the Sentinel AI platform",
        version="0.1.0",
        default_response_class=EnvelopeResponse,
        lifespan=build_lifespan(settings),
        # Studio serves the docs pages itself (app/docs): FastAPI's load Swagger UI from a CDN.
        # The password flow needs no OAuth2 redirect page.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url=OPENAPI_PATH if docs else None,
        openapi_tags=openapi.TAGS,
        # A slash redirect would point at a URL built from the client's Host: unknown paths,
        # with or without a trailing slash, are 404 envelopes instead.
        redirect_slashes=False,
    )
    app.state.settings = settings
    loaded = load_versioned(settings)  # a bad file stops start-up here
    app.state.loaded_registry = loaded
    app.state.registry = registry = loaded.config
    handlers.install(app)
    if docs:
        docs_router.install(app, OPENAPI_PATH)
    routers.include(app, settings)
    # `studio openapi` works in any stage.
    # A list, so that a registry reload can replace the proxy's part (`follow_registry`).
    extensions = [proxy_openapi.documenter(settings.api_prefix, registry)]
    openapi.install(app, CookiePolicy.from_settings(settings).session_name, extensions)
    install_middleware(app, settings, registry)
    app.state.registry_listeners = [follow_registry(app, settings, extensions)]
    # Tracing wraps the whole stack, and the fast lane branches off inside it: a proxied
    # request has the same server span with the lane on or off.
    tracing.instrument_app(app, tracer_provider)
    if settings.runtime_fast_lane:
        app.enable_proxy_lane()
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` is built on first access, so importing this module has no side effects.
    if name == "app":
        # The served app: until the lifespan listens for SIGHUP (a registry reload), one
        # must not end the process, as it would by default.
        if hasattr(signal, "SIGHUP"):
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            application = create_app()
        except RegistryError as exc:
            print(f"Studio service registry is invalid: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        globals()["app"] = application
        return application
    raise AttributeError(name)
