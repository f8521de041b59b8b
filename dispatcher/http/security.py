"""Security headers on every HTTP answer: the Content-Security-Policy, nosniff, no framing,
the referrer policy, and no-store on answers to authenticated requests.

A pure ASGI middleware: it edits the headers of ``http.response.start`` and passes every body
message through untouched, so the live event stream (/api/v1/stream) is not buffered the way
Starlette's BaseHTTPMiddleware would buffer it. Only FastAPI's documentation pages are read
whole (small, fixed HTML), to allow their own inline script by its hash.
"""

import base64
import hashlib
import json
from collections.abc import Iterable
from html.parser import HTMLParser

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The pages load only their own scripts, styles, images and API; no inline script, no plugin,
#: no framing (clickjacking a technician's "Replaced" button), no <base> or foreign form target.
#: Inline <style> stays allowed: the pages carry their CSS inline, and CSS cannot run script.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
          "form-action 'self'; object-src 'none'")

#: FastAPI's Swagger UI and ReDoc load their bundles from jsDelivr, and Swagger UI starts with
#: an inline script. They get the same policy with exactly that added: the two packages' folders
#: on the CDN (not the whole CDN), the inline scripts by hash, ReDoc's fonts and search worker.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/ https://cdn.jsdelivr.net/npm/redoc@2/"
DOCS_POLICY = ("default-src 'self'; script-src 'self' " + _CDN + " {hashes}; "
               "style-src 'self' 'unsafe-inline' " + _CDN + " https://fonts.googleapis.com; "
               "font-src https://fonts.gstatic.com; "
               "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
               "worker-src blob:; frame-ancestors 'none'; base-uri 'none'; "
               "form-action 'self'; object-src 'none'")

#: same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on a form's
#: POST to its own site, so the sign-in link's button and a form's change made with the session
#: cookie would be refused as cross-origin (tests/web/test_security.py shows both). Other sites
#: get no referrer at all, as under no-referrer; strict-origin-when-cross-origin would give
#: them our host name.
REFERRER_POLICY = "same-origin"
SESSION_COOKIE = "hg_session"


class SecurityHeaders:
    """Add the security headers to every answer; a header the route set itself is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one request's ``send``; lifespan and websockets pass through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = _authenticated(scope["headers"])
        docs = scope["path"] in DOCS_PATHS
        started = False
        held: list[Message] = []  # a docs page's messages, until its body is complete

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not docs:
                    message["headers"] = _with(message["headers"], POLICY, authenticated)
                    await send(message)
                    return
            if docs:
                held.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    await _send_docs(held, authenticated, send)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:  # the 500 Starlette answers outside us would carry none of this
                await _internal_error(send, authenticated)
            raise


def _authenticated(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request carried credentials: an Authorization header or the session cookie."""
    for name, value in headers:
        if name == b"authorization":
            return True
        if name == b"cookie" and any(
                part.split(b"=", 1)[0].strip() == SESSION_COOKIE.encode()
                for part in value.split(b";")):
            return True
    return False


def _with(headers: Iterable[tuple[bytes, bytes]], policy: str,
          authenticated: bool) -> list[tuple[bytes, bytes]]:
    """The answer's headers plus each security header it does not set itself."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    wanted = {b"content-security-policy": policy, b"x-content-type-options": "nosniff",
              b"x-frame-options": "DENY", b"referrer-policy": REFERRER_POLICY}
    if authenticated:  # a shared or back-button cache must not keep someone's data
        wanted[b"cache-control"] = "no-store"
    out += [(name, value.encode()) for name, value in wanted.items() if name not in present]
    return out


async def _send_docs(held: list[Message], authenticated: bool, send: Send) -> None:
    """Send a documentation page whole, its policy allowing its own inline scripts by hash."""
    start, bodies = held[0], held[1:]
    html = b"".join(m.get("body", b"") for m in bodies)
    hashes = " ".join(f"'sha256-{h}'" for h in _inline_script_hashes(html.decode("utf-8")))
    start["headers"] = _with(start["headers"], DOCS_POLICY.format(hashes=hashes), authenticated)
    await send(start)
    await send({"type": "http.response.body", "body": html, "more_body": False})


class _InlineScripts(HTMLParser):
    """Collect the text of each <script> without a src."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def _inline_script_hashes(html: str) -> list[str]:
    """The base64 SHA-256 of each inline script, as a CSP 'sha256-…' source wants it."""
    parser = _InlineScripts()
    parser.feed(html)
    parser.close()
    return [base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
            for s in parser.scripts]


async def _internal_error(send: Send, authenticated: bool) -> None:
    """A 500 with the headers, for an exception that escaped before any answer started."""
    body = json.dumps({"detail": "internal error; it has been logged, try again"}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500,
                "headers": _with(headers, POLICY, authenticated)})
    await send({"type": "http.response.body", "body": body, "more_body": False})
