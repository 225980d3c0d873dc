"""`/docs` and `/redoc` served by Studio: same-origin assets, their types and caching, the docs
CSP, envelopes for what is not there, and no docs outside dev."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from importlib import resources

import httpx
import pytest

from app.core import edge
from app.core.config import Settings
from app.docs import assets
from app.main import create_app
from tests.support import StateApp

PAGES = ("/docs", "/redoc")


class References(HTMLParser):
    """Every URL a page loads (`src`, `href`, ReDoc's `spec-url`) and any inline script/style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "spec-url", "data-openapi-url"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag in ("script", "style") and not values.get("src"):
            self._open = tag
        if any(name.startswith("on") or name == "style" for name in values):
            self.inline.append(f"<{tag}> attribute")

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(f"<{self._open}> {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def references(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


@pytest.fixture
async def docs_client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, dict(state or {})))
        async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
            yield client


@pytest.mark.parametrize("page", PAGES)
async def test_pages_load_only_same_origin_assets_and_no_inline_code(
    docs_client: httpx.AsyncClient, page: str
) -> None:
    response = await docs_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    found = references(response.text)
    assert found.inline == []
    assert found.urls, "the page loads nothing"
    for url in found.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin, no CDN
    assert "/openapi.json" in found.urls
    for url in found.urls:
        loaded = await docs_client.get(url)
        assert loaded.status_code == 200, url


async def test_assets_have_their_types_and_are_cached_as_immutable(
    docs_client: httpx.AsyncClient,
) -> None:
    html = (await docs_client.get("/docs")).text + (await docs_client.get("/redoc")).text
    urls = {url for url in references(html).urls if url.startswith("/docs/assets/")}
    expected = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".png": "image/png",
    }
    served = {url.rsplit("/", 1)[1] for url in urls}
    assert served == set(assets.load())  # every asset is used, and nothing else is linked
    for url in urls:
        response = await docs_client.get(url)
        suffix = "." + url.rsplit(".", 1)[1]
        assert response.headers["content-type"] == expected[suffix], url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        # A fingerprinted name: the hash is the content's, so a new file is a new URL.
        name = url.rsplit("/", 1)[1]
        source = assets.load()[name].source
        assert name == assets.fingerprinted(source, response.content)


async def test_vendor_assets_are_the_pinned_package_files(docs_client: httpx.AsyncClient) -> None:
    vendor = resources.files("fastapi_offline").joinpath("static")
    bundle = assets.load()
    for source in assets.VENDOR_FILES:
        name = bundle.url_name(source)
        response = await docs_client.get(f"/docs/assets/{name}")
        assert response.content == vendor.joinpath(source).read_bytes()


async def test_swagger_is_started_without_reaching_out(docs_client: httpx.AsyncClient) -> None:
    bundle = assets.load()
    init = (await docs_client.get(f"/docs/assets/{bundle.url_name('swagger-init.js')}")).text
    assert "validatorUrl: null" in init  # the default badge is an image from swagger.io
    assert "persistAuthorization: false" in init
    assert "queryConfigEnabled: false" in init
    css = (await docs_client.get(f"/docs/assets/{bundle.url_name('studio-docs.css')}")).text
    for field in ("client_id_password", "client_secret_password", "password_type"):
        assert f'label[for="{field}"]' in css


def directives(csp: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in csp.split(";") if part.strip())
    return {part[0]: part[1:] for part in parts}


# What a docs page may load beyond its own origin: Swagger's data: icons; on /redoc only, its
# pinned inline stylesheets by hash and its search worker from a blob: URL.
EXTRA_SOURCES = {
    "/docs": {"img-src": ["data:"]},
    "/redoc": {
        "img-src": ["data:"],
        "style-src": list(edge.REDOC_STYLE_HASHES),
        "worker-src": ["blob:"],
    },
}


@pytest.mark.parametrize(
    ("path", "page"), [("/docs", "/docs"), ("/redoc", "/redoc"), ("/docs/assets/x.js", "/docs")]
)
async def test_docs_csp_allows_only_studio_itself(
    docs_client: httpx.AsyncClient, path: str, page: str
) -> None:
    csp = (await docs_client.get(path)).headers["content-security-policy"]
    found = directives(csp)
    assert found["default-src"] == ["'none'"]
    assert found["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert found["frame-ancestors"] == ["'none'"]
    assert found["base-uri"] == ["'none'"] and found["form-action"] == ["'none'"]
    for directive, sources in found.items():
        extra = EXTRA_SOURCES[page].get(directive, [])
        for source in sources:
            assert source in ("'self'", "'none'", *extra), (directive, source)
    assert not re.search(r"https?:|\*|unsafe", csp), csp


async def test_api_paths_keep_the_api_csp(docs_client: httpx.AsyncClient) -> None:
    for path in ("/health", "/openapi.json", "/docsx", "/redocs"):
        response = await docs_client.get(path)
        assert (
            response.headers["content-security-policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        ), path


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/nope.js",
        "/docs/assets/swagger-ui-bundle.js",  # the name without its fingerprint
        "/docs/assets/..%2f..%2fpyproject.toml",
        "/docs/oauth2-redirect",  # the password flow needs no redirect page
        "/docs/",
        "/redoc/",
    ],
)
async def test_unknown_docs_paths_are_404_envelopes(
    docs_client: httpx.AsyncClient, path: str
) -> None:
    response = await docs_client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "NOT_FOUND"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_a_docs_page_refuses_other_methods_in_the_envelope(
    docs_client: httpx.AsyncClient,
) -> None:
    response = await docs_client.post("/docs")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.services  # staging needs real PostgreSQL and Redis URLs
@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "staging", "cors_allow_origins": "https://app.example.com"},
        {"docs_enabled": False},
    ],
)
async def test_no_docs_outside_dev_or_when_turned_off(
    make_settings: Callable[..., Settings], overrides: dict[str, object]
) -> None:
    app = create_app(make_settings(**overrides))
    assert app.docs_url is None and app.redoc_url is None and app.openapi_url is None
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, dict(state or {})))
        async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
            for path in (*PAGES, "/openapi.json", f"/docs/assets/{next(iter(assets.load()))}"):
                response = await client.get(path)
                assert response.status_code == 404, path
                assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_dev_app_says_where_its_docs_are(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    assert (app.docs_url, app.redoc_url, app.openapi_url) == ("/docs", "/redoc", "/openapi.json")
    assert app.swagger_ui_oauth2_redirect_url is None
