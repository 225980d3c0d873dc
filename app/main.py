"""The ASGI application: `app.main:app`, built by `create_app()`."""

from __future__ import annotations

from fastapi import FastAPI

from app import routers
from app.core import handlers
from app.core.config import Settings, settings_or_exit
from app.core.envelope import EnvelopeResponse
from app.core.logging import configure_logging
from app.core.middleware import EnvelopeMiddleware, RequestContextMiddleware
from app.lifespan import build_lifespan

OPENAPI_PATH = "/openapi.json"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build Studio for the given (or the process) settings."""
    settings = settings or settings_or_exit()
    configure_logging(settings)
    docs = settings.show_docs
    app = FastAPI(
        title="Studio",
        summary="Backend-for-Frontend gateway of the Sentinel AI platform",
        version="0.1.0",
        default_response_class=EnvelopeResponse,
        lifespan=build_lifespan(settings),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url=OPENAPI_PATH if docs else None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect" if docs else None,
    )
    app.state.settings = settings
    handlers.install(app)
    routers.include(app, settings)
    # Added inner first: RequestContext ends up outermost, so every response gets its id.
    app.add_middleware(EnvelopeMiddleware, raw_paths=(OPENAPI_PATH, "/metrics"))
    app.add_middleware(RequestContextMiddleware, trusted_proxies=settings.trusted_networks)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` is built on first access, so importing this module has no side effects.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
