"""Passkeys in Chromium with its virtual authenticator (CDP WebAuthn domain): a technician
adds one from /tech, signs out, and signs in with it, no link; a customer is refused; a
replayed, unknown or rolled-back assertion is refused and changes nothing.

WebAuthn wants a domain as its relying party: Chromium refuses the IP address 127.0.0.1, so
the browser opens the same server as http://localhost:PORT (a secure context too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.http.app import create_app
from dispatcher.store import auth, passkeys
from hourglass.config import AuthConfig
from schemas.states import Role
from tests.web.conftest import Fleet, serving

Conn = psycopg.Connection[tuple[Any, ...]]
ANA = auth.Person(Role.TECHNICIAN, None, "t-ana")
ACME = auth.Person(Role.CUSTOMER, "acme", None, "ops@acme.example")


@pytest.fixture(scope="module")
def local(base_url: str) -> str:
    """The test server by the name WebAuthn accepts as a relying party."""
    return base_url.replace("127.0.0.1", "localhost")


def authenticator(page: Any) -> Any:
    """A platform authenticator with a resident key and user verification, on this page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    cdp.authenticator_id = made["authenticatorId"]
    return cdp


def link_signin(page: Any, local: str, db: Conn, who: auth.Person, home: str) -> None:
    """Sign in by a one-time link's button, as people do, and land on their page."""
    code = auth.create_code(db, who, timedelta(minutes=5), "test", datetime.now(UTC))
    page.goto(f"{local}/signin/{code}")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{local}{home}"


def add_passkey(page: Any, name: str) -> None:
    """On /passkeys: name one and add it; wait for it in the list."""
    page.get_by_label("Name it").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    page.locator("#passkeys li", has_text=name).wait_for()


def sessions(db: Conn, person: str) -> int:
    row = db.execute("SELECT count(*) FROM api_tokens WHERE kind = 'session'"
                     " AND person_id = %s", (person,)).fetchone()
    return int(row[0]) if row else 0


def me(page: Any) -> dict[str, Any]:
    """What /api/v1/me says of this page's session."""
    found: dict[str, Any] = page.evaluate(
        "fetch('/api/v1/me', {credentials: 'same-origin'}).then((r) => r.json())")
    return found


def test_a_technician_adds_a_passkey_and_signs_in_with_it(phone: Any, local: str, db: Conn,
                                                          fleet: Fleet) -> None:
    cdp = authenticator(phone)
    link_signin(phone, local, db, ANA, "/tech")
    with phone.expect_navigation():
        phone.get_by_role("link", name="Passkeys").click()
    assert phone.url == f"{local}/passkeys"
    add_passkey(phone, "Ana's phone")
    row = db.execute("SELECT id, name, sign_count, transports FROM passkeys"
                     " WHERE person_id = 't-ana'").fetchone()
    assert row is not None
    assert row[1] == "Ana's phone"
    assert row[3] == ["internal"]
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": cdp.authenticator_id})
    assert len(stored["credentials"]) == 1
    assert stored["credentials"][0]["isResidentCredential"]
    event = db.execute("SELECT who, detail FROM auth_events WHERE kind = 'passkey_registered'"
                       " ORDER BY id DESC LIMIT 1").fetchone()
    assert event is not None
    assert event[0] == "technician:t-ana"
    assert event[1]["passkey"] == row[0]

    phone.goto(f"{local}/tech")
    phone.locator("#signout").click()
    phone.wait_for_url(f"{local}/signin")
    assert me(phone)["detail"].startswith("not signed in")
    before = sessions(db, "t-ana")
    with phone.expect_navigation(url=f"{local}/tech"):
        phone.get_by_role("button", name="Sign in with a passkey").click()
    who = me(phone)
    assert (who["person"], who["role"], who["session"]) == ("t-ana", "technician", True)
    assert sessions(db, "t-ana") == before + 1
    after = db.execute("SELECT sign_count, last_used_at FROM passkeys WHERE id = %s",
                       (row[0],)).fetchone()
    assert after is not None
    assert after[1] is not None
    assert after[0] > row[2]  # the virtual authenticator counts each use
    signin = db.execute("SELECT who, detail FROM auth_events WHERE kind = 'signin'"
                        " ORDER BY id DESC LIMIT 1").fetchone()
    assert signin is not None
    assert signin[0] == "technician:t-ana"
    assert signin[1] == {"method": "passkey", "passkey": row[0]}
    cookie = next(c for c in phone.context.cookies() if c["name"] == "hg_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"


def test_a_customer_is_refused_a_passkey(desktop: Any, local: str, db: Conn,
                                         fleet: Fleet) -> None:
    authenticator(desktop)
    asked = db.execute("SELECT count(*) FROM passkey_challenges").fetchone()
    link_signin(desktop, local, db, ACME, "/status")
    desktop.goto(f"{local}/passkeys")
    desktop.get_by_text("passkeys are for staff").wait_for()
    assert desktop.locator("#passkey-form").is_hidden()
    r = httpx.post(f"{local}/api/v1/passkeys/register/options",
                   headers={"Authorization": f"Bearer {fleet.acme}"})
    assert r.status_code == 403
    assert "sign-in link" in r.json()["detail"]
    assert db.execute("SELECT count(*) FROM passkey_challenges").fetchone() == asked


def captured_assertion(page: Any, local: str, home: str) -> dict[str, Any]:
    """Sign in with the page's passkey, keeping the assertion it posted."""
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "")
            if r.url == f"{local}/signin/passkey" else None)
    with page.expect_navigation(url=f"{local}{home}"):
        page.get_by_role("button", name="Sign in with a passkey").click()
    assert len(posted) == 1
    body: dict[str, Any] = json.loads(posted[0])
    return body


def refused_in_page(page: Any, local: str, words: str) -> None:
    """Press the passkey button on /signin and see the refusal, still on /signin."""
    page.goto(f"{local}/signin")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_text(words).wait_for()
    assert page.url == f"{local}/signin"


def test_a_replayed_rolled_back_or_unknown_assertion_is_refused(
        desktop: Any, local: str, db: Conn, fleet: Fleet) -> None:
    maria = auth.Person(Role.MANAGER, None, "t-maria")
    authenticator(desktop)
    link_signin(desktop, local, db, maria, "/ops")
    desktop.goto(f"{local}/passkeys")
    add_passkey(desktop, "desk key")
    key = db.execute("SELECT id FROM passkeys WHERE person_id = 't-maria'").fetchone()
    assert key is not None
    desktop.goto(f"{local}/signin")
    body = captured_assertion(desktop, local, "/ops")

    def state() -> tuple[Any, ...]:
        row = db.execute("SELECT p.sign_count, p.last_used_at, (SELECT count(*) FROM api_tokens"
                         " WHERE kind = 'session' AND person_id = 't-maria') FROM passkeys p"
                         " WHERE p.id = %s", (key[0],)).fetchone()
        assert row is not None
        return tuple(row)

    was = state()
    replay = httpx.post(f"{local}/signin/passkey", json=body, headers={"Origin": local})
    assert replay.status_code == 400, replay.text
    assert "already used" in replay.json()["detail"]
    assert "hg_session" not in replay.cookies
    assert state() == was

    # a count lower than the one stored: a copied authenticator's
    db.execute("UPDATE passkeys SET sign_count = 1000000 WHERE id = %s", (key[0],))
    refused_in_page(desktop, local, "use count went backwards")
    db.execute("UPDATE passkeys SET sign_count = %s WHERE id = %s", (was[0], key[0]))
    assert state() == was

    # removed on the server: the authenticator still offers it, the server no longer knows it
    r = desktop.evaluate(f"fetch('/api/v1/passkeys/{key[0]}/remove', {{method: 'POST',"
                         " credentials: 'same-origin'}).then((r) => r.status)")
    assert r == 200
    refused_in_page(desktop, local, "not registered here")
    assert db.execute("SELECT count(*) FROM api_tokens WHERE kind = 'session'"
                      " AND person_id = 't-maria'").fetchone() == (was[2],)
    reasons = [row[0] for row in db.execute(
        "SELECT detail->>'reason' FROM auth_events WHERE kind = 'signin_refused'"
        " AND detail->>'method' = 'passkey' ORDER BY id")]
    assert len(reasons) == 3
    assert "already used" in reasons[0]
    assert "went backwards" in reasons[1]
    assert "not registered" in reasons[2]


def test_passkey_calls_say_what_is_wrong(local: str, fleet: Fleet) -> None:
    """Malformed answers and cross-site posts get a 4xx with what to do, never a 500."""
    with httpx.Client(base_url=local, timeout=10, headers={"Origin": local}) as http:
        r = http.post("/signin/passkey", json={"credential": {"id": "x"}})
        assert r.status_code == 400
        assert "not a passkey's answer" in r.json()["detail"]
        r = http.post("/signin/passkey", json={"credential": {}},
                      headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        options = http.post("/signin/passkey/options").json()["options"]
        assert options["allowCredentials"] == []
        assert options["rpId"] == "localhost"
        assert options["userVerification"] == "required"
        r = http.post("/api/v1/passkeys/register", json={"credential": {}, "name": "x"},
                      headers={"Authorization": f"Bearer {fleet.tech}"})
        assert r.status_code == 400
        assert "not a passkey's answer" in r.json()["detail"]


@pytest.fixture
def strict_server(web_db: str) -> Iterator[str]:
    """The app allowing 2 failed sign-ins a minute per client."""
    with serving(create_app(web_db, auth=AuthConfig(failures_per_minute=2)),
                 host="localhost") as url:
        yield url


def test_refused_passkey_sign_ins_count_against_the_client(strict_server: str) -> None:
    base = strict_server
    with httpx.Client(base_url=base, timeout=10, headers={"Origin": base}) as http:
        codes = [http.post("/signin/passkey", json={"credential": {"id": f"guess{n}"}}
                           ).status_code for n in range(2)]
        assert codes == [400, 400]
        r = http.post("/signin/passkey", json={"credential": {"id": "guess"}})
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert http.post("/signin/passkey/options").status_code == 429


def test_one_client_cannot_fill_the_challenge_table(local: str, db: Conn) -> None:
    """Anyone may start a passkey sign-in: one client holds at most OPEN_PER_CLIENT
    unanswered challenges at once, then is told when to come back."""
    open_now = db.execute("SELECT count(*) FROM passkey_challenges WHERE client = '127.0.0.1'"
                          " AND used_at IS NULL AND expires_at > now()").fetchone()
    assert open_now is not None
    db.execute("INSERT INTO passkey_challenges (challenge, purpose, client, created_at,"
               " expires_at) SELECT sha256((random()::text || g)::bytea), 'signin', '127.0.0.1',"
               " now(), now() + interval '5 minutes' FROM generate_series(1, %s) g",
               (passkeys.OPEN_PER_CLIENT - open_now[0],))
    with httpx.Client(base_url=local, timeout=10) as http:
        r = http.post("/signin/passkey/options")
        assert r.status_code == 429, r.text
        assert r.headers["Retry-After"] == "300"
        assert "try again in 5 minutes" in r.json()["detail"]
        db.execute("UPDATE passkey_challenges SET used_at = now() WHERE used_at IS NULL")
        assert http.post("/signin/passkey/options").status_code == 200
