"""Sign-in by one-time link, sessions, sign-out, and the audit an admin reads.

`GET /signin` asks for an email address and always answers the same, known or not;
`GET /signin/{code}` shows one "Sign in" button and consumes nothing (mail scanners fetch
links); `POST /signin/{code}` uses the code once and answers 303 to the person's page with
the session cookie. A manager sends a link from /ops (`POST /api/v1/signin-links`), by
email through the outbox. People list and end their sessions; an admin lists everyone's.
"""

import html
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import COOKIE, MAX_ID, Cursor, Deps, DictConn, Limit, client_of
from dispatcher.store import auth, outbox, tokens
from dispatcher.store.tokens import Principal
from schemas.states import Role

HOME = {Role.TECHNICIAN: "/tech", Role.CUSTOMER: "/status", Role.MANAGER: "/ops",
        Role.ADMIN: "/ops"}
EMAIL_MAX = 254
SAME_ANSWER = ("If that address belongs to someone we know, a sign-in link is on its way to "
               "it. It works once, for {ttl} minutes. Nothing arrived? Check the address, or "
               "ask your site manager or account manager to send you one.")


class SigninLinkIn(BaseModel):
    """Whom to send a sign-in link: a person of the fleet file, or a customer's address."""

    person: str | None = Field(default=None, min_length=1, max_length=100)
    customer: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, min_length=3, max_length=EMAIL_MAX,
                              pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


#: The sign-in page's passkey button, shown by /web/passkey.js where the browser has passkeys
#: (a file: the CSP allows no inline script).
PASSKEY_BLOCK = ('<div id="passkey" hidden><p class="note">Staff with a passkey sign in with '
                 'it, no link needed.</p><button type="button" id="passkey-signin">Sign in '
                 'with a passkey</button><p class="bad" id="passkey-error" role="alert"></p>'
                 '</div><script src="/web/passkey.js"></script>')


def page_html(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small self-contained page (its only script, if any, a file under /web/)."""
    return HTMLResponse(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Hourglass</title>
<style>body{{font:17px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#111}}
main{{max-width:28rem;margin:0 auto;padding:24px 18px}}h1{{font-size:22px}}
input,button{{font:inherit;width:100%;box-sizing:border-box;padding:14px;border-radius:10px}}
input{{border:1px solid #9ca3af;margin:6px 0 14px}}
button{{border:0;background:#1d4ed8;color:#fff;font-weight:600;min-height:52px}}
.note{{color:#374151}}.bad{{color:#991b1b}}
#passkey{{margin-top:28px;border-top:1px solid #d1d5db;padding-top:8px}}
a.alt{{display:block;text-align:center;padding:14px;margin-top:18px;border:1px solid #1d4ed8;
border-radius:10px;color:#1d4ed8;font-weight:600;text-decoration:none}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>""",
        status_code=status, headers={"Cache-Control": "no-store"})


def _email_form(message: str = "") -> str:
    return (f'{message}<form method="post" action="/signin">'
            '<label for="email">Your email address</label>'
            '<input id="email" name="email" type="email" autocomplete="email" required '
            f'maxlength="{EMAIL_MAX}"><button type="submit">Send me a sign-in link</button>'
            "</form>")


def _who(p: auth.Person, conn: DictConn) -> str:
    """A person's name for the sign-in button."""
    if p.person:
        row = conn.execute("SELECT name FROM technicians WHERE id = %s", (p.person,)).fetchone()
        name = row["name"] if row else p.person
        return f"{name} ({p.role.value})"
    row = conn.execute("SELECT name FROM customers WHERE id = %s", (p.customer,)).fetchone()
    return f"{p.email or 'you'} for {row['name'] if row else p.customer}"


def _send(conn: DictConn, deps: Deps, request: Request, p: auth.Person, address: str,
          by: str, now: datetime) -> None:
    ttl = timedelta(minutes=deps.auth.signin_ttl_minutes)
    code = auth.create_code(conn, p, ttl, by, now)
    link = f"{deps.base_url(request)}/signin/{code}"
    recipient = p.person or f"customer:{p.customer}:{address}"
    outbox.enqueue_email(
        conn, recipient=recipient, address=address, reason="signin_link",
        subject="Your Hourglass sign-in link",
        body=(f"Open this link to sign in to Hourglass:\n\n{link}\n\nIt works once, for "
              f"{deps.auth.signin_ttl_minutes:g} minutes. If you did not ask for it, ignore "
              "this message."),
        ref=f"signin-{tokens.digest(code)[:16]}", at=now)
    auth.audit(conn, "signin_link_sent", now, who=p.actor, client=client_of(request),
               by=by, to=address)


def signed_in(conn: DictConn, deps: Deps, request: Request, p: auth.Person, now: datetime,
              method: str, **detail: Any) -> tuple[int, RedirectResponse]:
    """Start a session for `p` (in the caller's transaction), audit it (with `detail`), and
    answer 303 to the person's page with the session cookie: every way of signing in ends
    here."""
    client = client_of(request)
    session, secret = tokens.start_session(
        conn, p.role, p.customer, p.person, now,
        timedelta(minutes=deps.auth.session_idle_minutes),
        timedelta(hours=deps.auth.session_max_hours),
        request.headers.get("user-agent"), client, p.email)
    auth.audit(conn, "signin", now, credential=session, who=p.actor, client=client,
               method=method, **detail)
    answer = RedirectResponse(HOME[p.role], status_code=303)
    answer.set_cookie(COOKIE, secret, max_age=int(deps.auth.session_max_hours * 3600),
                      httponly=True, samesite="lax", path="/",
                      secure=deps.base_url(request).startswith("https://"))
    return session, answer


def router(deps: Deps) -> APIRouter:
    """The sign-in routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    guard = deps.guard

    @api.get("/signin", include_in_schema=False)
    def signin_page() -> HTMLResponse:
        company = ('<p><a class="alt" href="/signin/oidc">Staff: sign in with your company '
                   "account</a></p>") if deps.auth.oidc.enabled else ""
        return page_html("Sign in", _email_form(
            '<p class="note">We send a link to your email address; it signs you in on this '
            "device.</p>") + company + PASSKEY_BLOCK)

    @api.post("/signin", include_in_schema=False)
    async def ask_for_link(request: Request, conn: db) -> HTMLResponse:
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        email = (form.get("email") or [""])[0].strip()
        if not email or "@" not in email or len(email) > EMAIL_MAX:
            return page_html("Sign in", _email_form(
                '<p class="bad">That is not an email address: type the address your '
                "manager has for you.</p>"), 422)
        client, now = client_of(request), datetime.now(UTC)
        guard.request(client, email)
        with conn.transaction():
            people = auth.people_for_email(conn, email)
            for p in people:
                _send(conn, deps, request, p, email, "self", now)
            auth.audit(conn, "signin_requested", now, client=client, known=bool(people))
        said = SAME_ANSWER.format(ttl=f"{deps.auth.signin_ttl_minutes:g}")
        return page_html("Check your email", f'<p class="note">{html.escape(said)}</p>')

    @api.get("/signin/{code}", include_in_schema=False)
    def confirm_page(code: str, conn: db, request: Request) -> HTMLResponse:
        guard.check(client_of(request))
        try:
            p = auth.peek_code(conn, code[:100], datetime.now(UTC))
        except auth.CodeRefused as exc:
            return page_html("This link does not work", f'<p class="bad">{html.escape(str(exc))}'
                         f"</p>{_email_form()}", 410)
        return page_html("Sign in", (
            f'<p class="note">Sign in as <strong>{html.escape(_who(p, conn))}</strong> on '
            "this device.</p>"
            f'<form method="post" action="/signin/{html.escape(code[:100])}">'
            '<button type="submit">Sign in</button></form>'))

    @api.post("/signin/{code}", include_in_schema=False)
    def use_code(code: str, conn: db, request: Request) -> Response:
        client, now = client_of(request), datetime.now(UTC)
        guard.check(client)
        origin = request.headers.get("origin")
        if origin and not deps.same_origin(request):
            raise HTTPException(403, "refused: sign in from the link's own page")
        try:
            with conn.transaction():
                code_id, p = auth.consume_code(conn, code[:100], now)
                session, answer = signed_in(conn, deps, request, p, now, "link")
                auth.link_session(conn, code_id, session)
        except auth.CodeRefused as exc:
            guard.failed(client)
            auth.audit(conn, "signin_refused", now, client=client, reason=str(exc))
            return page_html("This link does not work", f'<p class="bad">{html.escape(str(exc))}'
                         f"</p>{_email_form()}", 410)
        return answer

    @api.post("/signout", include_in_schema=False)
    def signout(conn: db, who: who_dep, request: Request) -> Response:
        principal: Principal = who
        now = datetime.now(UTC)
        if principal.session:
            tokens.revoke(conn, principal.token_id, principal.actor, now, kind="session")
            auth.audit(conn, "signout", now, credential=principal.token_id,
                       who=principal.actor, client=client_of(request))
        answer = RedirectResponse("/signin", status_code=303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    @api.get("/api/v1/me", response_model=models.Me)
    def me(conn: db, who: who_dep) -> dict[str, Any]:
        """Who this token or session is: the pages key their offline caches by it."""
        principal: Principal = who
        name = None
        if principal.person:
            row = conn.execute("SELECT name FROM technicians WHERE id = %s",
                               (principal.person,)).fetchone()
            name = row["name"] if row else None
        elif principal.customer:
            row = conn.execute("SELECT name FROM customers WHERE id = %s",
                               (principal.customer,)).fetchone()
            name = row["name"] if row else None
        return {"role": principal.role.value, "person": principal.person,
                "customer": principal.customer, "name": name, "session": principal.session}

    @api.get("/api/v1/sessions", response_model=models.SessionPage)
    def list_sessions(conn: db, who: who_dep, person: str | None = None,
                      customer: str | None = None) -> dict[str, Any]:
        """Open sessions: your own; an admin's, anyone's (filter by person or customer)."""
        principal: Principal = who
        if principal.role is not Role.ADMIN:
            person, customer = principal.person, principal.customer
            if principal.role is not Role.CUSTOMER and not person:
                raise HTTPException(403, "sessions belong to people: sign in as one")
        now = datetime.now(UTC)
        items = [_session(c, principal) for c in tokens.listed(conn, "session", person, customer)
                 if c.live(now)]
        return {"items": items, "next": None}

    @api.post("/api/v1/sessions/{session_id}/revoke", response_model=models.Revoked)
    def revoke_session(session_id: Annotated[int, Path(ge=1, le=MAX_ID)], conn: db,
                       who: who_dep, request: Request) -> dict[str, Any]:
        """End one session: one of your own, or as an admin anyone's."""
        principal: Principal = who
        mine = {c.id for c in tokens.listed(conn, "session", principal.person,
                                            principal.customer)}
        if principal.role is not Role.ADMIN and session_id not in mine:
            raise HTTPException(404, f"no session {session_id} of yours; list them at "
                                     "/api/v1/sessions")
        now = datetime.now(UTC)
        done = tokens.revoke(conn, session_id, principal.actor, now, kind="session")
        if not done:
            raise HTTPException(404, f"no open session {session_id}; list them at "
                                     "/api/v1/sessions")
        auth.audit(conn, "session_revoked", now, credential=session_id, who=principal.actor,
                   client=client_of(request))
        return {"revoked": 1}

    @api.post("/api/v1/sessions/revoke-all", response_model=models.Revoked)
    def sign_out_everywhere(conn: db, who: who_dep, request: Request) -> dict[str, Any]:
        """Sign out everywhere: end every session of yours, this one too."""
        principal: Principal = who
        if not principal.person and not principal.customer:
            raise HTTPException(403, "only a person's sessions can be ended all at once")
        now = datetime.now(UTC)
        if principal.person:
            n = tokens.revoke_sessions(conn, principal.actor, now, person=principal.person)
        else:
            n = tokens.revoke_sessions(conn, principal.actor, now, customer=principal.customer)
        auth.audit(conn, "signout_everywhere", now, credential=principal.token_id,
                   who=principal.actor, client=client_of(request), sessions=n)
        return {"revoked": n}

    @api.post("/api/v1/signin-links", status_code=202, response_model=models.LinkSent)
    def send_link(body: SigninLinkIn, conn: db, who: who_dep,
                  request: Request) -> dict[str, Any]:
        """A manager or admin sends someone a sign-in link by email (never in the answer)."""
        principal: Principal = who
        if principal.role not in (Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "managers and admins send sign-in links")
        now = datetime.now(UTC)
        if body.person:
            try:
                p = auth.person_role(conn, body.person)
            except ValueError as exc:
                raise HTTPException(404, str(exc)) from None
            address = outbox.email_of(conn, body.person)
            if address is None:
                raise HTTPException(409, f"{body.person} has no email address: add `email:` "
                                         "to them in the fleet file and load it")
        elif body.customer and body.email:
            if conn.execute("SELECT 1 FROM customers WHERE id = %s",
                            (body.customer,)).fetchone() is None:
                raise HTTPException(404, f"no customer {body.customer!r} in the fleet")
            p, address = auth.Person(Role.CUSTOMER, body.customer, None, body.email.lower()), \
                body.email.lower()
        else:
            raise HTTPException(422, "send {\"person\": ID} for staff, or {\"customer\": ID, "
                                     "\"email\": ADDRESS} for a customer's person")
        with conn.transaction():
            _send(conn, deps, request, p, address, principal.actor, now)
        return {"to": address, "expires_at": views.ts(
            now + timedelta(minutes=deps.auth.signin_ttl_minutes))}

    @api.get("/api/v1/auth-events", response_model=models.AuthEventPage)
    def auth_events(conn: db, who: who_dep, kind: str | None = None,
                    limit: Limit = 50,
                    cursor: Cursor = None,
                    ) -> dict[str, Any]:
        """Every sign-in, sign-out, revocation and refusal, newest first (admins)."""
        principal: Principal = who
        if principal.role is not Role.ADMIN:
            raise HTTPException(403, "the sign-in audit is for admins")
        rows = auth.events(conn, limit + 1, cursor, kind)
        items = [{"id": e.id, "at": views.ts(e.at), "kind": e.kind, "credential": e.credential,
                  "who": e.who, "client": e.client, "detail": e.detail} for e in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    return api


def _session(c: tokens.Credential, who: Principal) -> dict[str, Any]:
    return {"id": c.id, "role": c.role, "person": c.person, "customer": c.customer,
            "email": c.email, "device": c.device, "client": c.client,
            "started_at": views.ts(c.created_at), "last_seen_at": views.ts(c.last_used_at),
            "expires_at": views.ts(c.expires_at), "current": c.id == who.token_id}
