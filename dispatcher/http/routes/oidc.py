"""Staff sign in through the company's OpenID Connect provider (when auth.oidc is set).

The authorization code flow with PKCE (S256), state and nonce: GET /signin/oidc sends the
browser to the provider with a fresh state (kept hashed in oidc_logins, bound to this
browser by a short-lived cookie), nonce and code challenge; the provider sends it back to
GET /signin/oidc/callback, which takes the state once, exchanges the code with the PKCE
verifier and the client secret, checks the ID token (signature by the provider's keys,
issuer, audience, expiry, nonce) and signs the person whose id is in the configured claim
in, exactly like a sign-in link. Authlib makes the PKCE challenge and random strings;
joserfc (Authlib's JOSE library) checks the ID token.
"""

import html
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from dispatcher.http.deps import Deps, client_of
from dispatcher.http.routes.signin import page_html, signed_in
from dispatcher.store import auth, tokens
from hourglass.config import OidcConfig

STATE_COOKIE = "hg_oidc"
LOGIN_TTL = timedelta(minutes=10)  # from the redirect to the provider and back
DISCOVERY_TTL_S = 3600.0  # the provider's configuration and keys are read again hourly


class ProviderError(Exception):
    """The provider could not be used; what to tell the person."""


@dataclass
class Provider:
    """The provider's discovery document and keys, read when first needed."""

    config: OidcConfig
    _meta: dict[str, Any] = field(default_factory=dict)
    _keys: KeySet | None = None
    _read_at: float = 0.0

    def _fresh(self) -> None:
        if self._meta and time.monotonic() - self._read_at < DISCOVERY_TTL_S:
            return
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            meta = httpx.get(url, timeout=10).raise_for_status().json()
            keys = httpx.get(meta["jwks_uri"], timeout=10).raise_for_status().json()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ProviderError(f"the company sign-in ({self.config.issuer}) cannot be "
                                f"reached: {exc}; use a sign-in link meanwhile") from None
        self._meta, self._keys, self._read_at = meta, KeySet.import_key_set(keys), \
            time.monotonic()

    def authorize_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser."""
        self._fresh()
        query = {"response_type": "code", "client_id": self.config.client_id,
                 "redirect_uri": redirect_uri, "scope": self.config.scope, "state": state,
                 "nonce": nonce, "code_challenge": create_s256_code_challenge(verifier),
                 "code_challenge_method": "S256"}
        return f"{self._meta['authorization_endpoint']}?{urlencode(query)}"

    def claims(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange the code and check the ID token; its claims."""
        self._fresh()
        try:
            answer = httpx.post(
                self._meta["token_endpoint"], timeout=10,
                auth=(self.config.client_id, self.config.client_secret),
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": verifier})
        except httpx.HTTPError as exc:
            raise ProviderError(f"the company sign-in did not answer ({exc}); try again") \
                from None
        if answer.status_code != 200 or "id_token" not in answer.text:
            raise ProviderError(f"the company sign-in refused the code "
                                f"({answer.status_code}); start again")
        assert self._keys is not None
        try:
            token = jwt.decode(answer.json()["id_token"], self._keys)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._meta.get("issuer", self.config.issuer)},
                aud={"essential": True, "value": self.config.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError) as exc:
            raise ProviderError(f"the company sign-in's answer could not be trusted ({exc}); "
                                "start again") from None
        return dict(token.claims)


def router(deps: Deps) -> APIRouter:
    """The OpenID Connect routes (they answer 404 while auth.oidc is not configured)."""
    return _routes(deps, deps.db)


def _routes(deps: Deps, db: Any) -> APIRouter:
    api = APIRouter()
    provider = Provider(deps.auth.oidc)

    def callback_url(request: Request) -> str:
        return f"{deps.base_url(request)}/signin/oidc/callback"

    def refused(title: str, why: str, status: int) -> HTMLResponse:
        return page_html(title, f'<p class="bad">{html.escape(why)}</p><p><a href="/signin">'
                     "Sign in with a link instead</a></p>", status)

    @api.get("/signin/oidc", include_in_schema=False)
    def start(conn: db, request: Request) -> Response:
        if not deps.auth.oidc.enabled:
            return refused("No company sign-in", "company sign-in is not configured here "
                           "(auth.oidc): use a sign-in link", 404)
        deps.guard.check(client_of(request))
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        now = datetime.now(UTC)
        try:
            url = provider.authorize_url(callback_url(request), state, nonce, verifier)
        except ProviderError as exc:
            return refused("Company sign-in unavailable", str(exc), 503)
        conn.execute("INSERT INTO oidc_logins (state_hash, nonce, code_verifier, created_at,"
                     " expires_at) VALUES (%s, %s, %s, %s, %s)",
                     (tokens.digest(state), nonce, verifier, now, now + LOGIN_TTL))
        answer = RedirectResponse(url, status_code=302)
        answer.set_cookie(STATE_COOKIE, state, max_age=int(LOGIN_TTL.total_seconds()),
                          httponly=True, samesite="lax", path="/signin/oidc",
                          secure=deps.base_url(request).startswith("https://"))
        return answer

    @api.get("/signin/oidc/callback", include_in_schema=False)
    def back(conn: db, request: Request, code: str = "", state: str = "",
             error: str = "") -> Response:
        client, now = client_of(request), datetime.now(UTC)
        deps.guard.check(client)
        if not deps.auth.oidc.enabled:
            return refused("No company sign-in", "company sign-in is not configured here", 404)
        if error:
            auth.audit(conn, "signin_refused", now, client=client, method="oidc",
                       reason=f"provider: {error[:100]}")
            return refused("Not signed in", f"the company sign-in said: {error[:100]}", 400)
        mine = request.cookies.get(STATE_COOKIE, "")
        if not state or not code or not secrets.compare_digest(mine, state):
            deps.guard.failed(client)
            auth.audit(conn, "signin_refused", now, client=client, method="oidc",
                       reason="state missing or not this browser's")
            return refused("Not signed in", "this sign-in did not start in this browser (or "
                           "took too long): start again", 400)
        row = conn.execute(
            "UPDATE oidc_logins SET used_at = %s WHERE state_hash = %s AND used_at IS NULL"
            " AND expires_at > %s RETURNING nonce, code_verifier",
            (now, tokens.digest(state), now)).fetchone()
        if row is None:
            deps.guard.failed(client)
            auth.audit(conn, "signin_refused", now, client=client, method="oidc",
                       reason="state used or expired")
            return refused("Not signed in", "this sign-in was already used or took too long: "
                           "start again", 400)
        try:
            claims = provider.claims(code[:2000], callback_url(request), row["code_verifier"],
                                     row["nonce"])
        except ProviderError as exc:
            auth.audit(conn, "signin_refused", now, client=client, method="oidc",
                       reason=str(exc))
            return refused("Not signed in", str(exc), 400)
        person_id = str(claims.get(deps.auth.oidc.person_claim) or "")
        try:
            p = auth.person_role(conn, person_id)
        except ValueError:
            auth.audit(conn, "signin_refused", now, client=client, method="oidc",
                       reason=f"no person {person_id[:100]!r} in the fleet")
            return refused("Not signed in", f"the company account {person_id[:100]!r} is not "
                           "a technician or manager of this fleet: ask an admin to add you "
                           "to the fleet file", 403)
        with conn.transaction():
            _, answer = signed_in(conn, deps, request, p, now, "oidc")
        answer.delete_cookie(STATE_COOKIE, path="/signin/oidc")
        return answer

    return api
