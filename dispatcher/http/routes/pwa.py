"""/tech as an installable web app: its manifest, its icons and its service worker.

The service worker (dispatcher/web/sw.js) is served at /sw.js and registered by pwa.js with
the scope /tech, so it controls the technician's page alone (never /status or /ops). When
served it is given the app shell's exact URLs (the page's scripts by their ?v= versions, the
manifest, the icons) and a version made of all of them: any change to a script, the page or
an icon changes the worker's bytes, the browser installs the new one, and it takes over
(skipWaiting, clients.claim) while the page offers a reload. It is answered with
``Cache-Control: no-cache`` so the browser always asks whether it changed.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response

from dispatcher.http.deps import Deps
from dispatcher.http.routes import pages

#: the icons under dispatcher/web/icons/ (drawn by scripts/make_icons.py): size, file, purpose
ICONS = ((192, "icon-192", "any"), (512, "icon-512", "any"),
         (192, "maskable-192", "maskable"), (512, "maskable-512", "maskable"))
#: The shell's scripts: what /tech loads, in its order.
SHELL_SCRIPTS = ("common", "tech", "pwa")
THEME = "#111827"  # the page's header colour (its <meta name="theme-color">)
BACKGROUND = "#f3f4f6"  # the page's background, shown while it starts
#: The worker's one line the server fills in (sw.js says what it holds).
_BUILD = re.compile(r"^const BUILD = \{[^\n]*?\};", re.MULTILINE)
#: Icons change with a release only: a day, and revalidated by ETag after.
ICON_CACHE = "public, max-age=86400"


@dataclass(frozen=True)
class Asset:
    """One served file: bytes, type and strong ETag."""

    body: bytes
    media_type: str

    @property
    def etag(self) -> str:
        """The first 16 hex digits of the SHA-256, quoted."""
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


def manifest() -> dict[str, object]:
    """The web app manifest of /tech."""
    return {
        "id": "/tech", "name": "Hourglass · My jobs", "short_name": "Hourglass",
        "description": "Your hardware replacement jobs, with the one-hour clock, on your phone.",
        "start_url": "/tech", "scope": "/tech", "display": "standalone",
        "orientation": "portrait", "theme_color": THEME, "background_color": BACKGROUND,
        "icons": [{"src": f"/web/icons/{name}.png", "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": purpose} for size, name, purpose in ICONS],
    }


def build() -> tuple[Asset, Asset, dict[str, Asset]]:
    """The manifest, the worker (with its shell filled in) and the icons, read once."""
    web = resources.files("dispatcher").joinpath("web")
    scripts = pages.load_scripts()
    icons = {name: Asset(web.joinpath("icons", f"{name}.png").read_bytes(), "image/png")
             for _, name, _ in ICONS}
    man = Asset(json.dumps(manifest(), indent=1).encode(), "application/manifest+json")
    shell = (["/tech"] + [f"/web/{n}.js?v={scripts[n].version}" for n in SHELL_SCRIPTS]
             + ["/manifest.webmanifest"] + [f"/web/icons/{n}.png" for _, n, _ in ICONS])
    digest = hashlib.sha256(pages.page_html("tech", scripts).encode() + man.body)
    for name in sorted(icons):
        digest.update(icons[name].body)
    for n in SHELL_SCRIPTS:
        digest.update(scripts[n].version.encode())
    source = web.joinpath("sw.js").read_text(encoding="utf-8")
    line = "const BUILD = " + json.dumps({"version": digest.hexdigest()[:16], "shell": shell}) + ";"
    worker, filled = _BUILD.subn(lambda _: line, source, count=1)
    if filled != 1:
        raise ValueError("dispatcher/web/sw.js has no 'const BUILD = …;' line to fill in")
    return man, Asset(worker.encode(), "text/javascript; charset=utf-8"), icons


def router(deps: Deps) -> APIRouter:
    """The manifest, the icons and the service worker (static: no data, no session)."""
    api = APIRouter()
    man, worker, icons = build()

    def answer(asset: Asset, request: Request, cache: str) -> Response:
        headers = {"ETag": asset.etag, "Cache-Control": cache}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    @api.get("/manifest.webmanifest", include_in_schema=False)
    def web_manifest(request: Request) -> Response:
        """The web app manifest: /tech installs as an app."""
        return answer(man, request, "no-cache")

    @api.get("/sw.js", include_in_schema=False)
    def service_worker(request: Request) -> Response:
        """The service worker; always revalidated, so a new version is found at once."""
        return answer(worker, request, "no-cache")

    @api.get("/web/icons/{name}.png", include_in_schema=False)
    def icon(name: str, request: Request) -> Response:
        """One of the app's icons; 404 for any other name."""
        found = icons.get(name)
        if found is None:
            raise HTTPException(404, f"no icon {name}.png; the icons are "
                                     + ", ".join(f"{n}.png" for n in icons))
        return answer(found, request, ICON_CACHE)

    return api
