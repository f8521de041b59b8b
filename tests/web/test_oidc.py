"""Staff sign in through a real local OpenID provider (oidc-provider-mock) in Chromium:
the code flow with state, nonce and PKCE, the ID token checked, the person from a claim."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from dispatcher.http.app import create_app
from hourglass.config import AuthConfig, OidcConfig
from tests.web.conftest import Fleet, serving

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub="maria-at-corp", claims={"preferred_username": "t-maria"}),
             User(sub="ana-at-corp", claims={"preferred_username": "t-ana"}),
             User(sub="stranger-at-corp", claims={"preferred_username": "t-nobody"})]
    with run_server_in_thread(require_nonce=True, user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def company(web_db: str, provider: str, fleet: Fleet) -> Iterator[str]:
    """The dispatcher with auth.oidc pointing at the provider."""
    cfg = AuthConfig(failures_per_minute=10_000, oidc=OidcConfig(
        issuer=provider, client_id="hourglass", client_secret="a-client-secret"))
    with serving(create_app(web_db, auth=cfg)) as url:
        yield url


def sign_in_as(page: Any, company: str, who: str) -> None:
    page.goto(f"{company}/signin")
    page.get_by_role("link", name="Staff: sign in with your company account").click()
    page.get_by_role("button", name=who).click()  # the provider one-click user


def test_a_manager_signs_in_with_the_company_account(desktop: Any, company: str,
                                                     db: Conn) -> None:
    sign_in_as(desktop, company, "maria-at-corp")
    desktop.wait_for_url(f"{company}/ops")
    expect(desktop.locator("#help")).to_have_count(0)
    expect(desktop.locator("#status")).to_contain_text("Live", timeout=10_000)
    cookies = {c["name"]: c for c in desktop.context.cookies()}
    assert cookies["hg_session"]["httpOnly"]
    assert "hg_oidc" not in cookies  # the state cookie is gone once used
    row = db.execute("SELECT who, detail->>'method' FROM auth_events WHERE kind = 'signin'"
                     " ORDER BY id DESC LIMIT 1").fetchone()
    assert row == ("manager:t-maria", "oidc")
    used = db.execute("SELECT count(*) FROM oidc_logins WHERE used_at IS NULL").fetchone()
    assert used == (0,)


def test_a_technician_lands_on_the_phone_page(phone: Any, company: str) -> None:
    sign_in_as(phone, company, "ana-at-corp")
    phone.wait_for_url(f"{company}/tech")
    expect(phone.locator("#help")).to_have_count(0)


def test_an_account_not_in_the_fleet_is_refused(desktop: Any, company: str, db: Conn) -> None:
    sign_in_as(desktop, company, "stranger-at-corp")
    expect(desktop.locator("body")).to_contain_text("not a technician or manager")
    assert "hg_session" not in {c["name"] for c in desktop.context.cookies()}
    row = db.execute("SELECT detail->>'reason' FROM auth_events WHERE kind = 'signin_refused'"
                     " ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    assert "t-nobody" in row[0]


def test_a_callback_from_another_browser_or_replayed_is_refused(company: str, provider: str,
                                                                desktop: Any) -> None:
    forged = httpx.get(f"{company}/signin/oidc/callback",
                       params={"code": "x", "state": "y"})
    assert forged.status_code == 400
    assert "did not start in this browser" in forged.text
    # a real round trip, then the same callback URL again: the state is used
    seen: list[str] = []
    desktop.on("request", lambda r: seen.append(r.url) if "/signin/oidc/callback" in r.url
               else None)
    sign_in_as(desktop, company, "maria-at-corp")
    desktop.wait_for_url(f"{company}/ops")
    again = desktop.goto(seen[0])
    assert again is not None
    assert again.status == 400


def test_without_oidc_the_routes_say_so(base_url: str) -> None:
    r = httpx.get(f"{base_url}/signin/oidc")
    assert r.status_code == 404
    assert "use a sign-in link" in r.text
    assert "company account" not in httpx.get(f"{base_url}/signin").text
