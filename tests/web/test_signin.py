"""Sign-in as design.md's contract says, on a real server: one-time links, session cookies,
Origin checks, tokens only in Authorization, rate limits and the audit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from dispatcher.http.app import create_app
from dispatcher.http.deps import COOKIE
from dispatcher.store import auth, tokens
from hourglass.config import AuthConfig
from schemas.states import Role
from tests.web.conftest import Fleet, SignIn, serving

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def staff_email(db: Conn, fleet: Fleet) -> str:
    db.execute("INSERT INTO contacts (person_id, channel, address)"
               " VALUES ('t-ana', 'email', 'ana@example.net') ON CONFLICT DO NOTHING")
    return "ana@example.net"


def code_for(db: Conn, who: auth.Person, ttl: timedelta = timedelta(minutes=15)) -> str:
    return auth.create_code(db, who, ttl, "test", datetime.now(UTC))


ANA = auth.Person(Role.TECHNICIAN, None, "t-ana")


@contextmanager
def signed_in(base_url: str, db: Conn, who: auth.Person = ANA) -> Iterator[httpx.Client]:
    """A client holding a session cookie, as a browser after the link's button."""
    with httpx.Client(base_url=base_url, timeout=10, headers={"Origin": base_url}) as client:
        r = client.post(f"/signin/{code_for(db, who)}")
        assert r.status_code == 303, r.text
        assert COOKIE in client.cookies
        yield client


def test_a_link_signs_in_once_and_only_by_post(base_url: str, db: Conn, fleet: Fleet) -> None:
    code = code_for(db, ANA)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for _ in range(2):  # a mail scanner's GET, then the person's: nothing consumed
            page = http.get(f"/signin/{code}")
            assert page.status_code == 200
            assert "Ana Souza (technician)" in page.text
            assert ">Sign in</button>" in page.text
        r = http.post(f"/signin/{code}", headers={"Origin": base_url})
        assert r.status_code == 303
        assert r.headers["location"] == "/tech"
        cookie = r.headers["set-cookie"]
        assert f"{COOKIE}=hgs_" in cookie
        low = cookie.lower()
        assert "httponly" in low
        assert "samesite=lax" in low
        assert "path=/" in low
        assert "secure" not in low  # the public URL is http here
        again = http.post(f"/signin/{code}", headers={"Origin": base_url})
        assert again.status_code == 410
        assert "already used" in again.text
        assert "ask for a new one" in again.text
        assert http.get(f"/signin/{code}").status_code == 410
        jobs = http.get("/api/v1/jobs")  # the cookie from the 303 authenticates the API
        assert jobs.status_code == 200, jobs.text
    row = db.execute("SELECT used_at IS NOT NULL, session_id IS NOT NULL FROM signin_codes"
                     " WHERE code_hash = %s", (tokens.digest(code),)).fetchone()
    assert row == (True, True)


def test_an_expired_or_unknown_code_says_what_to_do(base_url: str, db: Conn,
                                                    fleet: Fleet) -> None:
    code = code_for(db, ANA, ttl=timedelta(seconds=-1))
    with httpx.Client(base_url=base_url, timeout=10) as http:
        r = http.post(f"/signin/{code}")
        assert r.status_code == 410
        assert "expired" in r.text
        assert 'action="/signin"' in r.text
        r = http.post("/signin/not-a-code")
        assert r.status_code == 410
        assert "not valid" in r.text
        assert COOKIE not in http.cookies


def test_a_cookie_change_from_another_origin_is_refused(base_url: str, db: Conn,
                                                        fleet: Fleet) -> None:
    with signed_in(base_url, db) as http:
        for origin in ("https://evil.example", None):
            headers = {"Origin": origin} if origin else {}
            if origin is None:
                http.headers.pop("Origin", None)
            r = http.post("/api/v1/sessions/revoke-all", headers=headers)
            assert r.status_code == 403, r.text
            assert "this site's own pages" in r.json()["detail"]
        r = http.post("/api/v1/sessions/revoke-all", headers={"Origin": base_url})
        assert r.status_code == 200
        assert r.json()["revoked"] >= 1
        assert http.get("/api/v1/jobs").status_code == 401  # that ended this session too


def test_sessions_are_listed_and_revoked_and_end_when_idle(base_url: str, db: Conn,
                                                           fleet: Fleet) -> None:
    with signed_in(base_url, db) as phone, signed_in(base_url, db) as laptop:
        mine = phone.get("/api/v1/sessions").json()["items"]
        ids = {s["id"] for s in mine}
        assert len(ids) >= 2
        current = [s for s in mine if s["current"]]
        assert len(current) == 1
        assert current[0]["person"] == "t-ana"
        assert current[0]["device"]
        assert current[0]["last_seen_at"]
        assert current[0]["expires_at"]
        laptop_id = next(s["id"] for s in laptop.get("/api/v1/sessions").json()["items"]
                         if s["current"])
        r = phone.post(f"/api/v1/sessions/{laptop_id}/revoke")
        assert r.status_code == 200
        gone = laptop.get("/api/v1/jobs")
        assert gone.status_code == 401
        assert "sign in again at /signin" in gone.json()["detail"]
        assert phone.get("/api/v1/jobs").status_code == 200
        # unused past its idle time: ended, though its absolute end is days away
        sid = next(s["id"] for s in mine if s["current"])
        db.execute("UPDATE api_tokens SET last_used_at = now() - make_interval(secs =>"
                   " idle_s + 120) WHERE id = %s", (sid,))
        assert phone.get("/api/v1/jobs").status_code == 401
    with httpx.Client(base_url=base_url, timeout=10,
                      cookies={COOKIE: "hgs_forged"}) as forged:
        assert forged.get("/api/v1/jobs").status_code == 401


def test_another_persons_session_cannot_be_ended(base_url: str, db: Conn, fleet: Fleet) -> None:
    maria = auth.Person(Role.MANAGER, None, "t-maria")
    with signed_in(base_url, db) as ana, signed_in(base_url, db, maria) as manager:
        ana_id = next(s["id"] for s in ana.get("/api/v1/sessions").json()["items"]
                      if s["current"])
        r = manager.post(f"/api/v1/sessions/{ana_id}/revoke")
        assert r.status_code == 404
        assert ana.get("/api/v1/jobs").status_code == 200
        assert ana_id not in {s["id"] for s in manager.get("/api/v1/sessions").json()["items"]}


def test_asking_for_a_link_answers_the_same_known_or_not(base_url: str, db: Conn,
                                                         staff_email: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        known = http.post("/signin", data={"email": staff_email})
        unknown = http.post("/signin", data={"email": "nobody@example.net"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    rows = db.execute("SELECT address, channel, body FROM outbox WHERE reason = 'signin_link'"
                      " ORDER BY id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(staff_email, "email")]
    assert f"{base_url}/signin/" in rows[0][2]
    link = next(w for w in rows[0][2].split() if "/signin/" in w)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        assert http.post(link.removeprefix(base_url),
                         headers={"Origin": base_url}).status_code == 303
    kinds = [r[0] for r in db.execute(
        "SELECT detail->>'known' FROM auth_events WHERE kind = 'signin_requested'"
        " ORDER BY id")]
    assert kinds[-2:] == ["true", "false"]


def test_a_manager_sends_a_link_by_email_and_never_sees_it(base_url: str, db: Conn,
                                                           fleet: Fleet, staff_email: str) -> None:
    r = httpx.post(f"{base_url}/api/v1/signin-links", json={"person": "t-ana"},
                   headers={"Authorization": f"Bearer {fleet.manager}"})
    assert r.status_code == 202, r.text
    assert r.json()["to"] == staff_email
    assert "/signin/" not in r.text
    r = httpx.post(f"{base_url}/api/v1/signin-links",
                   json={"customer": "acme", "email": "Ops@Acme.example"},
                   headers={"Authorization": f"Bearer {fleet.manager}"})
    assert r.status_code == 202
    assert r.json()["to"] == "ops@acme.example"
    assert db.execute("SELECT 1 FROM customer_users WHERE customer_id = 'acme'"
                      " AND email = 'ops@acme.example'").fetchone()
    r = httpx.post(f"{base_url}/api/v1/signin-links", json={"person": "t-maria"},
                   headers={"Authorization": f"Bearer {fleet.manager}"})
    assert r.status_code == 409
    assert "fleet file" in r.json()["detail"]
    r = httpx.post(f"{base_url}/api/v1/signin-links", json={"person": "t-ana"},
                   headers={"Authorization": f"Bearer {fleet.tech}"})
    assert r.status_code == 403


def test_a_token_rides_only_in_authorization_and_ends_when_revoked_or_expired(
        base_url: str, db: Conn, fleet: Fleet) -> None:
    token = tokens.create(db, Role.TECHNICIAN, None, "t-ana")
    r = httpx.get(f"{base_url}/api/v1/jobs", params={"access_token": token})
    assert r.status_code == 401
    assert "Authorization: Bearer" in r.json()["detail"]
    ok = httpx.get(f"{base_url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    tid, used = db.execute("SELECT id, last_used_at FROM api_tokens WHERE token_hash = %s",
                           (tokens.digest(token),)).fetchone() or (0, None)
    assert used is not None
    assert tokens.revoke(db, tid, "test", datetime.now(UTC))
    r = httpx.get(f"{base_url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    old = tokens.create(db, Role.TECHNICIAN, None, "t-ana",
                        expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert httpx.get(f"{base_url}/api/v1/jobs",
                     headers={"Authorization": f"Bearer {old}"}).status_code == 401


def test_the_admin_reads_the_audit(base_url: str, db: Conn, fleet: Fleet) -> None:
    admin = tokens.create(db, Role.ADMIN, None, None)
    with signed_in(base_url, db) as http:
        http.post("/signout")
    httpx.get(f"{base_url}/api/v1/jobs", headers={"Authorization": "Bearer hg_wrong"})
    r = httpx.get(f"{base_url}/api/v1/auth-events", params={"limit": 200},
                  headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    kinds = {e["kind"] for e in r.json()["items"]}
    assert {"signin", "signout", "token_refused"} <= kinds
    assert all(e["client"] == "127.0.0.1" for e in r.json()["items"] if e["kind"] == "signin")
    assert httpx.get(f"{base_url}/api/v1/auth-events",
                     headers={"Authorization": f"Bearer {fleet.manager}"}).status_code == 403


@pytest.fixture
def strict_server(web_db: str) -> Iterator[str]:
    """The app with small limits: 3 failures a minute, 2 sign-in requests an hour."""
    with serving(create_app(web_db, auth=AuthConfig(failures_per_minute=3,
                                                    signin_requests_per_hour=2))) as url:
        yield url


def test_wrong_tokens_and_sign_in_requests_are_rate_limited(strict_server: str,
                                                            fleet: Fleet) -> None:
    base = strict_server
    codes = [httpx.get(f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer hg_x{n}"}
                       ).status_code for n in range(3)]
    assert codes == [401, 401, 401]
    t0 = time.monotonic()
    r = httpx.get(f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer {fleet.tech}"})
    assert r.status_code == 429, r.text  # even a right token, from a client guessing
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "try again in" in r.json()["detail"]
    assert httpx.post(f"{base}/signin/guess").status_code == 429
    assert time.monotonic() - t0 < 5
    asked = [httpx.post(f"{base}/signin", data={"email": f"x{n}@example.net"}).status_code
             for n in range(3)]
    assert asked == [200, 200, 429]


def test_the_command_line_makes_links_lists_and_revokes(web_db: str, base_url: str,
                                                        fleet: Fleet, db: Conn) -> None:
    env = {**os.environ, "HOURGLASS_DATABASE_URL": web_db,
           "HOURGLASS_AUTH_PUBLIC_URL": "https://hourglass.example.com"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hourglass.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    link = run("signin-link", "--person", "t-ana", "--ttl", "5m")
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith("https://hourglass.example.com/signin/")
    assert "\n" not in url
    code = url.rsplit("/", 1)[1]
    left = db.execute("SELECT expires_at - created_at FROM signin_codes WHERE code_hash = %s",
                      (tokens.digest(code),)).fetchone()
    assert left == (timedelta(minutes=5),)
    bad = run("signin-link", "--person", "t-nobody")
    assert bad.returncode == 2
    assert "no person" in bad.stderr
    made = run("token", "create", "--role", "technician", "--person", "t-ana", "--expires", "90d")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    row = db.execute("SELECT id, expires_at - created_at FROM api_tokens"
                     " WHERE token_hash = %s", (tokens.digest(secret),)).fetchone()
    assert row is not None
    assert timedelta(days=89) < row[1] <= timedelta(days=90)
    tid = str(row[0])
    listed = run("token", "list")
    assert listed.returncode == 0
    assert secret not in listed.stdout
    assert listed.stdout.splitlines()[0].split()[0] == "id"
    line = next(x for x in listed.stdout.splitlines()[1:] if x.split()[0] == tid)
    assert "t-ana" in line
    assert "live" in line
    assert run("token", "revoke", tid).returncode == 0
    r = httpx.get(f"{base_url}/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401
    assert run("token", "revoke", tid).returncode == 2  # already revoked: says so
    with signed_in(base_url, db):
        sessions = run("session", "list")
    assert sessions.returncode == 0
    assert "t-ana" in sessions.stdout
    assert "hgs_" not in sessions.stdout


def test_a_manager_sends_a_link_from_the_ops_page(desktop: Any, base_url: str, db: Conn,
                                                  fleet: Fleet, staff_email: str,
                                                  signin: SignIn) -> None:
    signin(desktop, fleet.manager, "/ops")
    invite = desktop.locator("#invite")
    expect(invite).to_be_visible()
    invite.locator("summary").click()
    desktop.fill("#invite-person", "t-ana")
    desktop.get_by_role("button", name="Send the link by email").click()
    expect(desktop.locator("#invite-said")).to_contain_text(f"Sent to {staff_email}")
    sent = db.execute("SELECT count(*) FROM outbox WHERE reason = 'signin_link'"
                      " AND address = %s AND body LIKE %s",
                      (staff_email, f"%{base_url}/signin/%")).fetchone()
    assert sent is not None
    assert sent[0] >= 1
    desktop.fill("#invite-person", "t-nobody")
    desktop.get_by_role("button", name="Send the link by email").click()
    expect(desktop.locator("#invite-said")).to_contain_text("no person")
