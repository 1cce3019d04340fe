"""The built browser assets (web/dist): content-hashed names from the build's manifest, served
precompressed and cached for a year."""

from __future__ import annotations

import json
import mimetypes
import os
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Receive, Scope, Send

MANIFEST = "manifest.json"
# A hashed name never changes content, so browsers may keep it a year without asking again.
IMMUTABLE = "public, max-age=31536000, immutable"
# Anything else (an unhashed file someone links by hand) is checked on each use.
REVALIDATE = "no-cache"
# Preferred first: brotli is ~15% smaller than gzip for the editor bundle.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


class Manifest:
    """``web/dist/manifest.json`` ({"editor.js": "editor-HASH.js", ...}), reread when the build
    rewrites it (``node web/build.mjs --watch`` does, while the server runs)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST
        self._stamp: float | None = None
        self._names: dict[str, str] = {}
        self._hashed: frozenset[str] = frozenset()

    def _load(self) -> None:
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        names: dict[str, str] = {}
        if stamp is not None:
            try:
                names = {str(k): str(v) for k, v in json.loads(self.path.read_text()).items()}
            except (OSError, ValueError, AttributeError):
                names = {}  # half-written by a running build: the next request rereads it
        self._stamp, self._names = stamp, names
        self._hashed = frozenset(names.values()) | {f"{v}.map" for v in names.values()}

    def url(self, name: str) -> str:
        self._load()
        return f"/static/{self._names.get(name, name)}"

    def is_hashed(self, name: str) -> bool:
        self._load()
        return name in self._hashed


def accepted(accept_encoding: str) -> set[str]:
    """The codings an Accept-Encoding header allows (``q=0`` refuses one)."""
    codings = set()
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = params.strip().removeprefix("q=")
        try:
            refused = params.strip().startswith("q=") and float(q) == 0
        except ValueError:
            refused = True
        if coding and not refused:
            codings.add(coding.strip())
    return codings


class Assets(StaticFiles):
    """StaticFiles that answers with the build's ``.br``/``.gz`` twin when the browser accepts
    it, and marks content-hashed files immutable."""

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        super().__init__(directory=str(directory), check_dir=False)
        self.manifest = manifest

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        request = Headers(scope=scope)
        name = os.path.basename(full_path)
        media_type = mimetypes.guess_type(name)[0] or "text/plain"
        headers = {
            "cache-control": IMMUTABLE if self.manifest.is_hashed(name) else REVALIDATE,
            "vary": "Accept-Encoding",
        }
        path, stat_now = full_path, stat_result
        # A byte range of the compressed twin is not a range of the file asked for.
        if "range" not in request:
            codings = accepted(request.get("accept-encoding", ""))
            for coding, suffix in ENCODINGS:
                twin = f"{full_path}{suffix}"
                if coding in codings and os.path.isfile(twin):
                    path, stat_now = twin, os.stat(twin)
                    headers["content-encoding"] = coding
                    break
        response = FileResponse(
            path,
            status_code=status_code,
            stat_result=stat_now,
            media_type=media_type,
            headers=headers,
        )
        if self.is_not_modified(response.headers, request):
            return NotModifiedResponse(response.headers)
        return response


class Gzip(GZipMiddleware):
    """Starlette's gzip for pages and JSON, except that ``gzip;q=0`` means no gzip (Starlette
    looks for the word "gzip" anywhere in Accept-Encoding)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Headers(scope=scope).get("accept-encoding", "")
            if "gzip" in header.lower() and "gzip" not in accepted(header):
                scope = dict(scope)
                headers = MutableHeaders(scope=scope)
                headers["accept-encoding"] = ", ".join(sorted(accepted(header)))
        await super().__call__(scope, receive, send)
