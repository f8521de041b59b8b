"""The push API over a real HTTP server and database: the key, subscriptions (own only, at
most ten, bad ones refused with a reason), a notification's actions posted as the service
worker posts them (session cookie, the page's Origin, Idempotency-Key), and a manager's
answers to an escalation ("I have it", "not me": on to the executive at once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dispatcher.domain import push as rules
from dispatcher.http.app import create_app
from dispatcher.store import outbox, push, tokens
from hourglass.config import AuthConfig, PushConfig
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident, serving

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def base_url(web_db: str) -> Iterator[str]:
    """The app with http push endpoints on this machine allowed, as tests and the demo run."""
    app = create_app(web_db, auth=AuthConfig(failures_per_minute=10_000),
                     push=PushConfig(allow_http_localhost=True))
    with serving(app) as url:
        yield url


def keys() -> dict[str, str]:
    """A browser's subscription keys."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": rules.b64url_encode(point), "auth": rules.b64url_encode(bytes(16))}


def api(base: str, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    """One call with a bearer token."""
    return httpx.request(method, base + path, headers={"Authorization": f"Bearer {token}"},
                         **kw)


def test_the_key_is_for_staff_and_never_changes(base_url: str, fleet: Fleet) -> None:
    first = api(base_url, fleet.tech, "GET", "/api/v1/push/key")
    assert first.status_code == 200
    raw = rules.b64url(first.json()["public_key"], "key")
    assert "=" not in first.json()["public_key"]
    assert rules.on_curve(raw)
    assert api(base_url, fleet.manager, "GET", "/api/v1/push/key").json() == first.json()
    refused = api(base_url, fleet.acme, "GET", "/api/v1/push/key")
    assert refused.status_code == 403
    assert "push notifications are for staff" in refused.json()["detail"]


def test_a_device_subscribes_again_lists_and_removes_its_own(base_url: str, fleet: Fleet,
                                                               db: Conn) -> None:
    maria = tokens.create(db, Role.MANAGER, None, "t-maria")
    body = {"endpoint": "http://127.0.0.1:9/push/ana-phone", "keys": keys(),
            "expirationTime": None, "device": "Pixel 8"}
    made = api(base_url, fleet.tech, "POST", "/api/v1/push/subscriptions", json=body)
    assert made.status_code == 201, made.text
    sub = made.json()
    assert (sub["endpoint"], sub["device"], sub["last_success_at"], sub["last_failure"]) == (
        body["endpoint"], "Pixel 8", None, None)
    again = api(base_url, fleet.tech, "POST", "/api/v1/push/subscriptions",
                json={**body, "keys": (k := keys()), "expirationTime": 1.7e12})
    assert (again.status_code, again.json()["id"]) == (200, sub["id"])
    assert db.execute("SELECT p256dh FROM push_subscriptions WHERE id = %s",
                      (sub["id"],)).fetchone() == (k["p256dh"],)
    mine = api(base_url, fleet.tech, "GET", "/api/v1/push/subscriptions").json()
    assert [s["id"] for s in mine["items"]] == [sub["id"]]
    assert mine["next"] is None
    assert api(base_url, maria, "GET", "/api/v1/push/subscriptions").json()["items"] == []
    other = api(base_url, maria, "DELETE", f"/api/v1/push/subscriptions/{sub['id']}")
    assert other.status_code == 404
    assert "of yours" in other.json()["detail"]
    gone = api(base_url, fleet.tech, "DELETE", f"/api/v1/push/subscriptions/{sub['id']}")
    assert (gone.status_code, gone.content) == (204, b"")
    assert api(base_url, fleet.tech, "GET", "/api/v1/push/subscriptions").json()["items"] == []


@pytest.mark.parametrize(("change", "why"), [
    ({"endpoint": "http://push.example.com/x"}, "must be an https URL"),
    ({"endpoint": "https://me:secret@push.example.com/x"}, "user name or password"),
    ({"endpoint": "https://push.example.com/" + "x" * 1000}, "at most 1000"),
    ({"keys": {"p256dh": "B" * 87, "auth": "A" * 22}}, "not a point on the P-256 curve"),
    ({"keys": {"p256dh": "BAAA", "auth": "A" * 22}}, "65-byte uncompressed"),
    ({"keys": {"p256dh": "not/base64", "auth": "A" * 22}}, "not base64url"),
    ({"keys": {"auth": "AAAA"}}, "keys.auth: 3 bytes"),
    ({"device": "x" * 101}, "device"),
    ({"keys": None}, "keys"),
])
def test_a_bad_subscription_is_refused_with_the_reason(base_url: str, fleet: Fleet,
                                                       change: dict[str, Any],
                                                       why: str) -> None:
    body: dict[str, Any] = {"endpoint": "https://push.example.com/send/abc", "keys": keys()}
    for k, v in change.items():
        body[k] = {**body["keys"], **v} if k == "keys" and isinstance(v, dict) else v
    r = api(base_url, fleet.tech, "POST", "/api/v1/push/subscriptions", json=body)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]


def test_a_person_keeps_ten_devices_and_the_oldest_goes(base_url: str, db: Conn) -> None:
    token = tokens.create(db, Role.TECHNICIAN, None, "t-ana")
    db.execute("DELETE FROM push_subscriptions WHERE person_id = 't-ana'")
    ids = [api(base_url, token, "POST", "/api/v1/push/subscriptions",
               json={"endpoint": f"https://push.example.com/send/{n}", "keys": keys(),
                     "device": f"phone {n}"}).json()["id"] for n in range(12)]
    kept = api(base_url, token, "GET", "/api/v1/push/subscriptions").json()["items"]
    assert [s["id"] for s in kept] == ids[:1:-1]  # newest first, the first two gone


def session(db: Conn, role: Role, person: str) -> str:
    """A signed-in person's session cookie value (as a sign-in link's button gives)."""
    _, secret = tokens.start_session(db, role, None, person, datetime.now(UTC),
                                     timedelta(hours=1), timedelta(hours=2), "phone",
                                     "127.0.0.1", None)
    return secret


def as_worker(base: str, cookie: str, action: dict[str, Any], key: str,
              origin: str | None) -> httpx.Response:
    """POST a notification's action as the service worker does: credentials 'include'
    (the session cookie), the page's Origin, Idempotency-Key <key>:<action>, JSON."""
    headers = {"Idempotency-Key": f"{key}:{action['action']}",
               "Content-Type": "application/json", "Cookie": f"hg_session={cookie}"}
    if origin:
        headers["Origin"] = origin
    content = None if action["body"] is None else rules.encode(action["body"])
    return httpx.request(action["method"], base + action["path"], headers=headers,
                         content=content)


def test_the_notifications_buttons_work_with_the_session_and_the_pages_origin(
        base_url: str, db: Conn, fleet: Fleet, open_incident: OpenIncident) -> None:
    cookie = session(db, Role.TECHNICIAN, "t-ana")
    ack_job, decline_job = open_incident(), open_incident()
    now = datetime.now(UTC)
    ack = rules.payload(rules.Notice("dispatched", "s", "b", "incident:1:event:1",
                                     "dispatched", ack_job.incident, ack_job.job), now)
    no = as_worker(base_url, cookie, ack["actions"][0], ack["key"], None)
    assert no.status_code == 403
    assert "Origin" in no.json()["detail"]
    other_site = as_worker(base_url, cookie, ack["actions"][0], ack["key"], "https://evil.example")
    assert other_site.status_code == 403
    r = as_worker(base_url, cookie, ack["actions"][0], ack["key"], base_url)
    assert (r.status_code, r.json()["state"]) == (200, "acknowledged"), r.text
    replay = as_worker(base_url, cookie, ack["actions"][0], ack["key"], base_url)
    assert replay.json() == r.json()  # a second tap on the lock screen changes nothing
    dec = rules.payload(rules.Notice("dispatched", "s", "b", "incident:2:event:2",
                                     "dispatched", decline_job.incident, decline_job.job), now)
    r = as_worker(base_url, cookie, dec["actions"][1], dec["key"], base_url)
    assert (r.status_code, r.json()["state"]) == (200, "declined"), r.text
    reason = db.execute("SELECT detail->>'reason' FROM incident_events WHERE incident_id = %s"
                        " AND kind = 'declined'", (decline_job.incident,)).fetchone()
    assert reason == ("Declined from the notification",)


def escalate(db: Conn, incident: int, to: str, role: str) -> None:
    """An escalation on the incident's timeline, as escalation.notify writes it."""
    db.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES"
               " (%s, now(), 'dispatcher', 'escalated', jsonb_build_object('step',"
               " 'ack_timeout', 'to', %s::text, 'role', %s::text, 'reason', 'late'))",
               (incident, to, role))


def kinds(db: Conn, incident: int) -> list[tuple[str, str, Any]]:
    """The escalation part of the incident's timeline: (kind, actor, to or by)."""
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT kind, actor, coalesce(detail->>'to', detail->>'by') FROM incident_events"
        " WHERE incident_id = %s AND kind LIKE 'escalat%%' ORDER BY id", (incident,))]


def test_a_manager_takes_or_passes_on_an_escalation(base_url: str, db: Conn, fleet: Fleet,
                                                    open_incident: OpenIncident) -> None:
    db.execute("INSERT INTO technicians (id, name, site_id, role) VALUES"
               " ('t-eve', 'Eve', 'iad1', 'executive') ON CONFLICT DO NOTHING")
    taken, passed, calm = open_incident(), open_incident(), open_incident()
    escalate(db, taken.incident, "t-maria", "manager")
    escalate(db, passed.incident, "t-maria", "manager")
    cookie = session(db, Role.MANAGER, "t-maria")
    now = datetime.now(UTC)
    doc = rules.payload(rules.Notice("escalated", "s", "b", f"incident:{taken.incident}:event:9",
                                     "escalated", taken.incident), now)
    r = as_worker(base_url, cookie, doc["actions"][0], doc["key"], base_url)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("incident", "action", "by", "next")} == {
        "incident": taken.incident, "action": "acknowledge", "by": "t-maria", "next": None}
    again = api(base_url, fleet.manager, "POST",
                f"/api/v1/incidents/{taken.incident}/escalation/acknowledge")
    assert again.json()["at"] == r.json()["at"]  # the same person again: the first answer
    assert kinds(db, taken.incident) == [("escalated", "dispatcher", "t-maria"),
                                         ("escalation_acknowledged", "manager:t-maria",
                                          "t-maria")]

    doc = rules.payload(rules.Notice("escalated", "s", "b", f"incident:{passed.incident}:event:9",
                                     "escalated", passed.incident), now)
    r = as_worker(base_url, cookie, doc["actions"][1], doc["key"], base_url)
    assert (r.status_code, r.json()["next"]) == (200, "t-eve"), r.text
    assert kinds(db, passed.incident) == [
        ("escalated", "dispatcher", "t-maria"),
        ("escalation_declined", "manager:t-maria", "t-maria"),
        ("escalated", "dispatcher", "t-eve")]
    moved = api(base_url, fleet.manager, "POST",
                f"/api/v1/incidents/{passed.incident}/escalation/decline", json={})
    assert moved.status_code == 409
    assert "went to t-eve, not you" in moved.json()["detail"]

    none = api(base_url, fleet.manager, "POST",
               f"/api/v1/incidents/{calm.incident}/escalation/acknowledge")
    assert none.status_code == 409
    assert "has not been escalated" in none.json()["detail"]
    tech = api(base_url, fleet.tech, "POST",
               f"/api/v1/incidents/{taken.incident}/escalation/acknowledge")
    assert tech.status_code == 403
    assert "manager" in tech.json()["detail"]


def test_any_notification_to_a_staff_person_queues_a_push_per_device(
        db: Conn, fleet: Fleet, open_incident: OpenIncident) -> None:
    """The hook is outbox.enqueue itself: a notification another part adds (here a
    'breach foreseen' alert to the site manager) pushes without more work, kind = reason."""
    i = open_incident().incident
    now = datetime.now(UTC)
    db.execute("DELETE FROM push_subscriptions WHERE person_id = 't-maria'")
    for n in range(2):
        push.subscribe(db, "t-maria", f"https://push.example.com/send/maria-{n}",
                       keys()["p256dh"], keys()["auth"], f"device {n}", now)
    for _ in range(2):  # the same decision twice queues nothing twice
        outbox.enqueue(db, recipient="t-maria", reason="breach_foreseen",
                       subject=f"[Hourglass] breach_foreseen: incident {i}",
                       body="predicted 19 min late", ref=f"incident:{i}:breach_foreseen",
                       at=now)
    rows = db.execute("SELECT address, body FROM outbox WHERE channel = 'push' AND ref LIKE %s"
                      " ORDER BY id", (f"incident:{i}:breach_foreseen:push:%",)).fetchall()
    assert [r[0] for r in rows] == ["device 0 via push.example.com",
                                    "device 1 via push.example.com"]
    doc = json.loads(rows[0][1])
    assert {k: doc[k] for k in ("kind", "incident", "job", "url", "tag", "actions", "key")} == {
        "kind": "breach_foreseen", "incident": i, "job": None, "url": f"/ops#incident-{i}",
        "tag": f"incident-{i}", "actions": [], "key": f"incident:{i}:breach_foreseen"}
