"""Swagger UI (`/docs`) and ReDoc (`/redoc`), served by Studio itself.

The vendor bundles come pinned from the `fastapi-offline` package (its static files only); the
page initialiser and Studio's stylesheet live in `static/`. Nothing is fetched from a CDN, so
the pages work offline and under a CSP that allows no inline script (`app/core/edge.py`).
"""
