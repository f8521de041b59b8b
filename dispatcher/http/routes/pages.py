"""The web pages: /tech (the technician's phone), /status (the customer), /ops (managers),
/passkeys (staff add and remove their passkeys), and their scripts under /web/ (no inline
script: the Content-Security-Policy forbids it)."""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from dispatcher.http.deps import Deps

PAGES = {"tech": "tech.html", "status": "status.html", "ops": "ops.html",
         "passkeys": "passkeys.html"}
#: dispatcher/web/<name>.js, the only ones served; passkey.js serves the sign-in page too
SCRIPTS = ("common", "tech", "status", "ops", "passkey", "charts", "care", "pwa")
#: A script's URL carries its content hash (?v=), so a phone on a weak signal keeps it until
#: it changes: a year, the longest lifetime caches honour, and immutable (not even revalidated).
IMMUTABLE = "public, max-age=31536000, immutable"
#: Without the current hash (an old page, a typed URL) the phone may keep it but asks first.
REVALIDATE = "no-cache"
#: The front page: the pages' links (a language and a title for screen readers).
INDEX = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
         'content="width=device-width, initial-scale=1"><title>Hourglass</title></head><body>'
         '<main><h1>Hourglass</h1><p><a href="/status">Status</a> · <a href="/tech">Technician'
         '</a> · <a href="/ops">Operations</a> · <a href="/docs">API</a></p></main></body>'
         '</html>')
_SCRIPT_TAG = re.compile(r'<script src="/web/([a-z]+)\.js"></script>')


@dataclass(frozen=True)
class Script:
    """One script file, read once at start, and its content hash."""

    body: bytes
    version: str  # the first 16 hex digits of its SHA-256: plenty against collisions

    @property
    def etag(self) -> str:
        """The strong ETag the file is answered with."""
        return f'"{self.version}"'


def router(deps: Deps) -> APIRouter:
    """The page and script routes (no API: the pages call it with the token they hold)."""
    api = APIRouter()
    scripts = load_scripts()
    for path in PAGES:
        html = page_html(path, scripts)
        api.add_api_route(f"/{path}", _page(html), methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)

    @api.get("/web/{name}.js", include_in_schema=False)
    def script(name: str, request: Request, v: str = "") -> Response:
        """One of the pages' scripts; 404 for any other name."""
        found = scripts.get(name)
        if found is None:
            raise HTTPException(404, f"no script {name}.js; the pages' scripts are "
                                     + ", ".join(f"{s}.js" for s in SCRIPTS))
        headers = {"ETag": found.etag,
                   "Cache-Control": IMMUTABLE if v == found.version else REVALIDATE}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type="text/javascript; charset=utf-8",
                        headers=headers)

    @api.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(INDEX)

    return api


def load_scripts() -> dict[str, Script]:
    """Every page script, read from the package (routes/pwa.py precaches the same)."""
    web = resources.files("dispatcher").joinpath("web")
    return {name: _script(web.joinpath(f"{name}.js").read_bytes()) for name in SCRIPTS}


def page_html(path: str, scripts: dict[str, Script]) -> str:
    """The page served at /<path>, its script tags pointing at the current versions."""
    web = resources.files("dispatcher").joinpath("web")
    return _versioned(web.joinpath(PAGES[path]).read_text(encoding="utf-8"), scripts)


def _script(body: bytes) -> Script:
    """A script and its version."""
    return Script(body, hashlib.sha256(body).hexdigest()[:16])


def _versioned(html: str, scripts: dict[str, Script]) -> str:
    """The page with each /web/<name>.js tag pointing at that file's current version."""

    def tag(m: re.Match[str]) -> str:
        found = scripts.get(m.group(1))
        if found is None:
            raise ValueError(f"a page loads /web/{m.group(1)}.js, which is not in SCRIPTS")
        return f'<script src="/web/{m.group(1)}.js?v={found.version}"></script>'

    return _SCRIPT_TAG.sub(tag, html)


def _page(html: str) -> Callable[[], HTMLResponse]:
    """Serve a page: revalidated each time (small), so it always names the current scripts."""

    def serve() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return serve
