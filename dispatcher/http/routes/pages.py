"""The web pages: /tech (the technician's phone), /status (the customer), /ops (managers)."""

from collections.abc import Callable
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dispatcher.http.deps import Deps

PAGES = {"tech": "tech.html", "status": "status.html", "ops": "ops.html"}
COMMON_JS_TAG = '<script src="/web/common.js"></script>'


def router(deps: Deps) -> APIRouter:
    """The page routes (no API: the pages call it with the token they hold)."""
    api = APIRouter()
    for path, file in PAGES.items():
        api.add_api_route(f"/{path}", _page(file), methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)

    @api.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse('<p><a href="/status">Status</a> · <a href="/tech">Technician</a>'
                            ' · <a href="/ops">Operations</a> · <a href="/docs">API</a></p>')

    return api


def _page(file: str) -> Callable[[], HTMLResponse]:
    """Serve a page with web/common.js inlined: one request, even on a phone's weak signal."""
    web = resources.files("dispatcher").joinpath("web")
    common = web.joinpath("common.js").read_text(encoding="utf-8")
    html = web.joinpath(file).read_text(encoding="utf-8").replace(
        COMMON_JS_TAG, f"<script>\n{common}</script>")

    def serve() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return serve
