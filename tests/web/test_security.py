"""The security headers on every answer, and the pages working under their
Content-Security-Policy in real Chromium (every page test in this folder also fails on any
CSP violation: see _watched in conftest.py)."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import iter_route_contexts
from playwright.sync_api import expect

from dispatcher.http.app import create_app
from dispatcher.http.security import DOCS_PATHS, POLICY
from dispatcher.store import auth
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident, SignIn, csp_violations

Conn = psycopg.Connection[tuple[Any, ...]]
SHOTS = os.environ.get("HOURGLASS_SHOTS", tempfile.gettempdir())
WEB = resources.files("dispatcher").joinpath("web")
HTML_FILES = sorted(f.name for f in WEB.iterdir() if f.name.endswith(".html"))
JS_FILES = sorted(f.name for f in WEB.iterdir() if f.name.endswith(".js"))
COMMON = {"content-security-policy", "x-content-type-options", "x-frame-options",
          "referrer-policy"}


def app_routes() -> list[tuple[str, str]]:
    """Every (method, path) the app serves, bar HEAD and OPTIONS."""
    app = create_app("postgresql://127.0.0.1/never-opened")  # the pool opens on startup only
    return sorted({(m, r.path) for r in iter_route_contexts(app.routes)
                   for m in (r.methods or ()) if m not in ("HEAD", "OPTIONS")})


def assert_secure(r: httpx.Response) -> None:
    """The headers every answer carries (the docs pages with their own, wider policy)."""
    csp = r.headers.get("content-security-policy", "")
    if r.request.url.path in DOCS_PATHS:
        assert "frame-ancestors 'none'" in csp, csp
        assert "object-src 'none'" in csp, csp
        assert "'unsafe-inline'" not in re.sub(r"style-src[^;]*", "", csp), csp
    else:
        assert csp == POLICY, f"{r.request.method} {r.request.url.path}: {csp!r}"
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("x-frame-options") == "DENY"
    assert r.headers.get("referrer-policy") == "same-origin"


@pytest.mark.parametrize(("method", "path"), app_routes())
def test_every_route_answers_with_the_security_headers(
        base_url: str, method: str, path: str) -> None:
    """Anonymous, each route's answer (a page, 200, 401, 404, 422: whatever it is) has them."""
    url = base_url + re.sub(r"\{[^}]+\}", "1", path)
    r = httpx.request(method, url, json={} if method != "GET" else None, timeout=10)
    assert r.status_code < 500, r.text
    assert_secure(r)


def test_api_answers_401_404_and_unknown_paths_carry_them(base_url: str, fleet: Fleet) -> None:
    bearer = {"Authorization": f"Bearer {fleet.acme}"}
    ok = httpx.get(f"{base_url}/api/v1/incidents", headers=bearer)
    assert ok.status_code == 200
    denied = httpx.get(f"{base_url}/api/v1/incidents")
    assert denied.status_code == 401
    wrong = httpx.get(f"{base_url}/api/v1/incidents", headers={"Authorization": "Bearer hg_x"})
    assert wrong.status_code == 401
    gone = httpx.get(f"{base_url}/api/v1/incidents/999999999", headers=bearer)
    assert gone.status_code == 404
    nowhere = httpx.get(f"{base_url}/no/such/page")
    assert nowhere.status_code == 404
    for r in (ok, denied, wrong, gone, nowhere):
        assert_secure(r)
    # answers to a request with credentials are never stored, even the refusals
    assert [r.headers.get("cache-control") for r in (ok, wrong, gone)] == ["no-store"] * 3


def test_no_store_follows_the_session_cookie_and_yields_to_the_route(base_url: str) -> None:
    session = httpx.get(f"{base_url}/api/v1/incidents",
                        headers={"Cookie": "theme=dark; hg_session=abc"})
    assert session.headers.get("cache-control") == "no-store"
    other = httpx.get(f"{base_url}/healthz", headers={"Cookie": "hg_sessionx=1; theme=dark"})
    assert "cache-control" not in other.headers  # only hg_session counts
    page = httpx.get(f"{base_url}/tech", headers={"Cookie": "hg_session=abc"})
    assert page.headers.get("cache-control") == "no-cache"  # the page's own: a static shell


def test_the_live_stream_still_streams_with_the_headers(base_url: str, fleet: Fleet) -> None:
    """The middleware passes the event stream through unbuffered: the first line arrives."""
    with httpx.stream("GET", f"{base_url}/api/v1/stream",
                      headers={"Authorization": f"Bearer {fleet.tech}"}, timeout=5) as r:
        assert r.status_code == 200
        assert_secure(r)
        first = next(r.iter_text())
    assert first.startswith("retry:")


def test_scripts_are_served_by_version(base_url: str) -> None:
    page = httpx.get(f"{base_url}/tech").text
    tags = re.findall(r'<script src="(/web/(\w+)\.js\?v=([0-9a-f]{16}))"></script>', page)
    assert [t[1] for t in tags][:2] == ["common", "tech"]  # common.js first, then the page's
    url, _, version = tags[1]
    r = httpx.get(base_url + url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"] == f'"{version}"'
    assert_secure(r)
    assert httpx.get(f"{base_url}/web/tech.js?v=0123").headers["cache-control"] == "no-cache"
    again = httpx.get(f"{base_url}/web/tech.js", headers={"If-None-Match": f'"{version}"'})
    assert (again.status_code, again.content) == (304, b"")
    for name in ("nope", "..%2Fapp", "tech.html"):
        missing = httpx.get(f"{base_url}/web/{name}.js")
        assert missing.status_code == 404
        assert_secure(missing)


class _Inline(HTMLParser):
    """Each inline script and inline event handler of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> (line {self.getpos()[0]})")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            self._in_script = True
            if "src" not in dict(attrs):
                self.found.append(f"<script> without src (line {self.getpos()[0]})")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"script text {data.strip()[:40]!r}")


@pytest.mark.parametrize("name", HTML_FILES)
def test_no_page_has_inline_script_or_handlers(name: str) -> None:
    parser = _Inline()
    parser.feed(WEB.joinpath(name).read_text(encoding="utf-8"))
    parser.close()
    assert not parser.found, f"dispatcher/web/{name}: the CSP would block {parser.found}"


@pytest.mark.parametrize("name", JS_FILES)
def test_no_script_writes_inline_handlers(name: str) -> None:
    """The HTML the scripts build (template strings) carries no on...= attribute either."""
    text = WEB.joinpath(name).read_text(encoding="utf-8")
    found = re.findall(r"<[a-z][^<>`]*\son[a-z]+\s*=", text)
    assert not found, f"dispatcher/web/{name}: inline handlers in built HTML: {found}"


@pytest.mark.parametrize("page_path", ["tech", "status", "ops"])
def test_each_page_runs_under_its_policy(
        desktop: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        page_path: str, signin: SignIn) -> None:
    """Signed in, each page renders its data with the policy in force (and none broken)."""
    open_incident(minutes_left=30)
    token = {"tech": fleet.tech, "status": fleet.acme, "ops": fleet.manager}[page_path]
    answer = signin(desktop, token, f"/{page_path}")
    assert answer.headers["content-security-policy"] == POLICY
    shown = {"tech": "[data-job]", "status": ".card", "ops": "tr[data-incident]"}[page_path]
    expect(desktop.locator(shown).first).to_be_visible()
    expect(desktop.locator("#status")).to_contain_text(re.compile("Live|updated"))
    assert csp_violations(desktop) == []


def test_the_policy_blocks_an_injected_inline_handler(phone: Any, base_url: str) -> None:
    """The control: injected markup's handler does not run, and the tests hear about it."""
    phone.goto(f"{base_url}/status")
    expect(phone.locator("#help")).to_be_visible()
    phone.evaluate("""document.body.insertAdjacentHTML("beforeend",
        '<img src="/no-such-image" onerror="window.pwned = 1">')""")
    phone.wait_for_function("document.querySelector('img[src=\"/no-such-image\"]').complete")
    for _ in range(50):  # the report comes by the console, within 5 s even on a busy machine
        if any("script-src" in v for v in csp_violations(phone)):
            break
        phone.wait_for_timeout(100)
    assert phone.evaluate("window.pwned") is None
    assert any("script-src" in v for v in csp_violations(phone)), csp_violations(phone)
    csp_violations(phone).clear()


def test_a_page_post_carries_its_real_origin(
        phone: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    """The referrer policy keeps Origin on the pages' own POSTs, a fetch's and a form's (under
    no-referrer Chromium sends 'null' for the form), which the session cookie's same-origin
    check reads."""
    opened = open_incident()
    signin(phone, fleet.tech, "/tech")
    button = phone.locator(f'[data-job="{opened.job}"]').get_by_role("button",
                                                                    name="Acknowledge")
    with phone.expect_request(lambda r: r.method == "POST") as tapped:
        button.tap()
    assert tapped.value.all_headers().get("origin") == base_url
    expect(phone.locator(f'[data-job="{opened.job}"]')).to_contain_text("On site")
    phone.evaluate("""document.body.insertAdjacentHTML("beforeend",
        '<form id="f" method="post" action="/api/v1/jobs/1/decline"></form>')""")
    with phone.expect_navigation() as submitted:  # to its end: closing mid-way can hang
        phone.evaluate("document.getElementById('f').submit()")
    assert submitted.value.request.all_headers().get("origin") == base_url


STUB_SWAGGER = """window.SwaggerUIBundle = (c) => {
  document.getElementById("swagger-ui").textContent = "swagger stub for " + c.url; return {}; };
SwaggerUIBundle.presets = {apis: {}}; SwaggerUIBundle.SwaggerUIStandalonePreset = {};"""


def test_swagger_ui_runs_its_inline_script_under_the_docs_policy(
        desktop: Any, base_url: str) -> None:
    """The CDN is stubbed (no network here), but the policy is the browser's: the CDN file
    is allowed, and so is FastAPI's inline script, by its hash."""
    desktop.route("https://cdn.jsdelivr.net/**", lambda route: route.fulfill(
        body=STUB_SWAGGER if route.request.url.endswith(".js") else "",
        content_type="text/javascript" if route.request.url.endswith(".js") else "text/css"))
    desktop.route("https://fastapi.tiangolo.com/**", lambda route: route.fulfill(status=404))
    answer = desktop.goto(f"{base_url}/docs")
    assert "'sha256-" in answer.headers["content-security-policy"]
    expect(desktop.locator("#swagger-ui")).to_have_text("swagger stub for /openapi.json")
    assert csp_violations(desktop) == []


@pytest.mark.parametrize(("page_path", "name"), [("status", "forget this link"),
                                                 ("ops", "sign out"), ("tech", "Sign out")])
def test_signing_out_still_works_without_inline_handlers(
        phone: Any, base_url: str, fleet: Fleet, page_path: str, name: str, signin: SignIn) -> None:
    """The footer's link (once an .onclick, redrawn every second) and the header's button."""
    token = {"tech": fleet.tech, "status": fleet.acme, "ops": fleet.manager}[page_path]
    signin(phone, token, f"/{page_path}")
    link = phone.get_by_role("button", name=name)
    expect(link).to_be_visible()
    phone.wait_for_timeout(1100)  # past a redraw of the footer: the listener is not on the node
    link.locator("xpath=..").screenshot(path=f"{SHOTS}/hg-{page_path}-sign-out-link.png")
    link.tap()
    phone.wait_for_url(f"{base_url}/signin")
    assert phone.evaluate("Object.keys(localStorage).filter((k) => k.includes('token'))") == []
    phone.goto(f"{base_url}/{page_path}")  # the session is over on the server too
    expect(phone.locator("#help")).to_be_visible()


def test_signing_in_by_the_links_button_and_out_by_a_form(
        desktop: Any, base_url: str, db: Conn, fleet: Fleet) -> None:
    """The sign-in pages under the policy, and both form POSTs carrying the real Origin (under
    no-referrer Chromium sends 'null', and the sign-in and the cookie's change are refused)."""
    code = auth.create_code(db, auth.Person(Role.TECHNICIAN, None, "t-ana"),
                            timedelta(minutes=15), "test", datetime.now(UTC))
    answer = desktop.goto(f"{base_url}/signin/{code}")
    assert answer.headers["content-security-policy"] == POLICY
    with desktop.expect_response(lambda r: r.request.method == "POST") as signed_in:
        desktop.get_by_role("button", name="Sign in").click()
    assert signed_in.value.status == 303, signed_in.value.text()
    desktop.wait_for_url(f"{base_url}/tech")
    assert "hg_session" in {c["name"] for c in desktop.context.cookies()}
    desktop.evaluate("""document.body.insertAdjacentHTML("beforeend",
        '<form id="out" method="post" action="/signout"></form>')""")
    with desktop.expect_navigation() as signed_out:
        desktop.evaluate("document.getElementById('out').submit()")
    landed = signed_out.value  # after the POST's redirect, if it answered one
    assert (landed.request.redirected_from or landed.request).method == "POST"
    assert landed.status < 400, landed.text()
    assert desktop.url == f"{base_url}/signin"  # the 303 of /signout
    expect(desktop.locator("form")).to_be_visible()
