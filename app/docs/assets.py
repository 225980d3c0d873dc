"""The docs pages' assets: read once, fingerprinted, held in memory.

Each file is served under a name carrying a hash of its content
(`swagger-ui-bundle.1a2b3c4d5e6f.js`), so it can be cached for a year as immutable and a new
package version or a changed initialiser is a new URL. The files are read when the app is
built: hashing needs their bytes anyway, and holding ~2.8 MB (in dev only, where the docs
exist) spares a disk read and a thread per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

VENDOR_PACKAGE = "fastapi_offline"  # pinned in pyproject.toml: the templates name its files
VENDOR_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
OWN_FILES = ("swagger-init.js", "studio-docs.css")

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: `name` is what the pages link to, `source` the file it came from."""

    source: str
    name: str
    media_type: str
    body: bytes


class AssetBundle(Mapping[str, Asset]):
    """The assets by served (fingerprinted) name; `url_name(source)` for the templates."""

    def __init__(self, assets: list[Asset]) -> None:
        self._by_name = {asset.name: asset for asset in assets}
        self._by_source = {asset.source: asset.name for asset in assets}

    def __getitem__(self, name: str) -> Asset:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def url_name(self, source: str) -> str:
        return self._by_source[source]


def fingerprinted(source: str, body: bytes) -> str:
    path = PurePosixPath(source)
    digest = hashlib.sha256(body).hexdigest()[:12]
    return f"{path.stem}.{digest}{path.suffix}"


def _read(folder: Traversable, source: str) -> Asset:
    body = folder.joinpath(source).read_bytes()
    media_type = MEDIA_TYPES[PurePosixPath(source).suffix]
    return Asset(source, fingerprinted(source, body), media_type, body)


@lru_cache(maxsize=1)
def load() -> AssetBundle:
    """Every docs asset, read once per process (a missing file fails the app's start)."""
    vendor = resources.files(VENDOR_PACKAGE).joinpath("static")
    own = resources.files(__package__ or "app.docs").joinpath("static")
    return AssetBundle(
        [_read(vendor, source) for source in VENDOR_FILES]
        + [_read(own, source) for source in OWN_FILES]
    )
