"""The HTML of `/docs` and `/redoc`: same-origin assets only, no inline script or style."""

from __future__ import annotations

from html import escape

from app.docs.assets import AssetBundle

ASSETS_PATH = "/docs/assets"

SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{swagger_css}">
<link rel="stylesheet" href="{studio_css}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{swagger_js}"></script>
<script src="{swagger_init}"></script>
</body>
</html>
"""

REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{studio_css}">
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API reference.</noscript>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{redoc_js}"></script>
</body>
</html>
"""


def _urls(bundle: AssetBundle, root_path: str) -> dict[str, str]:
    def url(source: str) -> str:
        return escape(f"{root_path}{ASSETS_PATH}/{bundle.url_name(source)}")

    return {
        "favicon": url("favicon.png"),
        "swagger_css": url("swagger-ui.css"),
        "studio_css": url("studio-docs.css"),
        "swagger_js": url("swagger-ui-bundle.js"),
        "swagger_init": url("swagger-init.js"),
        "redoc_js": url("redoc.standalone.js"),
    }


def swagger_page(bundle: AssetBundle, *, title: str, openapi_url: str, root_path: str) -> str:
    """Swagger UI; `static/swagger-init.js` starts it with the schema URL from the page."""
    return SWAGGER_PAGE.format(
        title=escape(title),
        openapi_url=escape(root_path + openapi_url),
        **_urls(bundle, root_path),
    )


def redoc_page(bundle: AssetBundle, *, title: str, openapi_url: str, root_path: str) -> str:
    """ReDoc; its bundle starts itself on the `<redoc>` element."""
    return REDOC_PAGE.format(
        title=escape(title),
        openapi_url=escape(root_path + openapi_url),
        **_urls(bundle, root_path),
    )
