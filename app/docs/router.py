"""`/docs`, `/redoc` and `/docs/assets/{name}`: the docs pages and their pinned assets."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, Response

from app.core.errors import NotFound
from app.docs import assets, pages

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
# The pages name fingerprinted assets: the pages themselves are checked on every visit.
PAGE_HEADERS = {"Cache-Control": "no-cache"}


def build_router(title: str, openapi_url: str) -> APIRouter:
    """The docs routes for a schema served at `openapi_url`."""
    bundle = assets.load()
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root_path = request.scope.get("root_path", "")
        html = pages.swagger_page(bundle, title=title, openapi_url=openapi_url, root_path=root_path)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @router.get(REDOC_PATH)
    async def redoc(request: Request) -> HTMLResponse:
        root_path = request.scope.get("root_path", "")
        html = pages.redoc_page(bundle, title=title, openapi_url=openapi_url, root_path=root_path)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @router.get(pages.ASSETS_PATH + "/{name}")
    async def asset(name: str) -> Response:
        found = bundle.get(name)
        if found is None:
            raise NotFound("No such docs asset")
        return Response(
            found.body,
            media_type=found.media_type,
            headers={"Cache-Control": assets.IMMUTABLE},
        )

    return router


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve the docs pages; `app.docs_url` / `app.redoc_url` then say where they are.

    The app is built with FastAPI's own docs routes off (they load Swagger UI from a CDN with
    an inline script); setting the attributes afterwards only records Studio's paths.
    """
    app.include_router(build_router(app.title, openapi_url))
    app.docs_url = DOCS_PATH
    app.redoc_url = REDOC_PATH
