"""Breach reviews and the technician's pause request over a real HTTP server and PostgreSQL:
who may, only breached incidents, the customer's view, overdue reviews, the manager told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.dispatcher.test_api_permissions import call, who
from tests.web.conftest import Fleet, OpenIncident

__all__ = ["who"]
Conn = psycopg.Connection[tuple[Any, ...]]
DENIED = {"reason": "customer_denied_access", "note": "security desk will not let me in"}


def later(hours: float = 48) -> str:
    """An RFC 3339 time some hours from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def review_body() -> dict[str, Any]:
    """A review as a manager writes it."""
    return {"cause": "No spare of this disk model on site; it came from another site.",
            "items": [{"text": "Keep two spares of ST8000NM000A at iad1", "owner": "t-maria",
                       "due_at": later()}]}


@pytest.fixture(scope="module")
def contacts(db: Conn, fleet: Fleet) -> None:
    """The site manager can be reached by e-mail."""
    db.execute("INSERT INTO contacts (person_id, channel, address)"
               " VALUES ('t-maria', 'email', 'maria@example.com')")


def breached(open_incident: OpenIncident, db: Conn, minutes_late: float = 10,
             verified_late: bool = False) -> int:
    """An acme incident past its deadline: still open, or verified late."""
    i = open_incident(minutes_left=-minutes_late).incident
    if verified_late:
        db.execute("UPDATE incidents SET state = 'verified', verified_at = deadline"
                   " + interval '5 minutes' WHERE id = %s", (i,))
    return i


STAFF = dict(anonymous=401, owner=403, other_customer=403, technician=403,
             other_technician=403, manager=None, admin=None)


@pytest.mark.parametrize(("route", "expected"), [
    ("POST /api/v1/incidents/{i}/review", {**STAFF, "manager": 201, "admin": 201}),
    ("PATCH /api/v1/incidents/{i}/review", {**STAFF, "manager": 200, "admin": 200}),
    ("GET /api/v1/reviews/overdue", {**STAFF, "manager": 200, "admin": 200}),
    ("POST /api/v1/incidents/{i}/pause-request",
     dict(anonymous=401, owner=403, other_customer=403, technician=202, other_technician=403,
          manager=403, admin=403)),
])
def test_permission_matrix(base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None],
                           contacts: None, open_incident: OpenIncident, route: str,
                           expected: dict[str, int]) -> None:
    method, path = route.split(" ")
    for caller, status in expected.items():
        i = breached(open_incident, db)
        if method == "PATCH":
            assert call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{i}/review",
                        json=review_body()).status_code == 201
        body = DENIED if "pause" in path else review_body() if "{i}" in path else None
        r = call(base_url, who[caller], method, path.format(i=i), json=body)
        assert r.status_code == status, f"{caller}: {route} -> {r.status_code} {r.text}"
        if status >= 400:
            assert r.json()["detail"]


def test_the_customer_sees_the_review_of_a_late_fix(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None],
        open_incident: OpenIncident) -> None:
    i = breached(open_incident, db, verified_late=True)
    assert call(base_url, fleet.acme, "GET", f"/api/v1/incidents/{i}").json()["review"] is None
    r = call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{i}/review",
             json=review_body())
    assert r.status_code == 201, r.text
    seen = call(base_url, fleet.acme, "GET", f"/api/v1/incidents/{i}").json()
    assert seen["review"]["cause"].startswith("No spare of this disk model")
    assert seen["review"]["author"] == "manager:t-maria"
    assert [x["owner"] for x in seen["review"]["items"]] == ["t-maria"]
    assert seen["review"]["items"][0]["done_at"] is None
    assert call(base_url, fleet.globex, "GET", f"/api/v1/incidents/{i}").status_code == 404

    item = {**review_body()["items"][0], "done_at": datetime.now(UTC).isoformat()}
    r = call(base_url, fleet.manager, "PATCH", f"/api/v1/incidents/{i}/review",
             json={"items": [item, {"text": "Alert on low spares", "owner": "t-ana",
                                    "due_at": later(5)}]})
    assert r.status_code == 200, r.text
    assert r.json()["cause"].startswith("No spare")  # untouched by an items-only edit
    assert r.json()["items"][0]["done_at"] is not None
    assert [x["n"] for x in r.json()["items"]] == [1, 2]
    kinds = [e["kind"] for e in call(base_url, fleet.acme, "GET",
                                     f"/api/v1/incidents/{i}").json()["timeline"]]
    assert kinds[-2:] == ["review_published", "review_updated"]


def test_overdue_reviews_are_listed_until_written(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None],
        open_incident: OpenIncident) -> None:
    old = breached(open_incident, db, minutes_late=3 * 24 * 60)  # three days past its deadline
    fresh = breached(open_incident, db, minutes_late=60)
    kept = open_incident(minutes_left=-3 * 24 * 60).incident
    db.execute("UPDATE incidents SET state = 'verified', verified_at = deadline"
               " - interval '1 minute' WHERE id = %s", (kept,))

    def listed() -> set[int]:
        r = call(base_url, fleet.manager, "GET", "/api/v1/reviews/overdue")
        assert r.json()["due_days"] == 2
        return {x["incident"] for x in r.json()["items"]}

    assert old in listed()
    assert fresh not in listed()
    assert kept not in listed()
    call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{old}/review", json=review_body())
    assert old not in listed()


@pytest.mark.parametrize(
    ("setup", "method", "body", "status", "words"),
    [
        ("in_time", "POST", "review", 409, "kept the promise"),
        ("verified_in_time", "POST", "review", 409, "only a breached incident"),
        ("reviewed", "POST", "review", 409, "already has a review"),
        ("breached", "PATCH", {"cause": "a new cause"}, 404, "no review yet"),
        ("breached", "POST", {"cause": "x", "items": []}, 422, "cause"),
        ("breached", "POST", {"cause": "disk", "items": [
            {"text": "spares", "owner": "t-maria", "due_at": "2026-12-01T10:00:00"}]}, 422,
         "due_at"),
        ("breached", "POST", {"cause": "disk", "items": [
            {"text": "spares", "owner": "ghost", "due_at": "2026-12-01T10:00:00Z"}]}, 422,
         "unknown owner"),
        ("breached", "POST", {"items": []}, 422, "cause"),
        ("missing", "POST", "review", 404, "no incident"),
    ],
)
def test_bad_review_requests_get_a_4xx_with_a_message(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None],
        open_incident: OpenIncident, setup: str, method: str, body: Any, status: int,
        words: str) -> None:
    if setup == "in_time":
        i = open_incident(minutes_left=30).incident
    elif setup == "verified_in_time":
        i = open_incident(minutes_left=-30).incident
        db.execute("UPDATE incidents SET state = 'verified', verified_at = deadline"
                   " - interval '10 minutes' WHERE id = %s", (i,))
    elif setup == "missing":
        i = 999999
    else:
        i = breached(open_incident, db)
    if setup == "reviewed":
        call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{i}/review",
             json=review_body())
    r = call(base_url, fleet.manager, method, f"/api/v1/incidents/{i}/review",
             json=review_body() if body == "review" else body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_pause_request_tells_the_manager_and_leaves_the_clock_running(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None], contacts: None,
        open_incident: OpenIncident) -> None:
    i = open_incident(minutes_left=30).incident
    before = call(base_url, fleet.acme, "GET", f"/api/v1/incidents/{i}").json()
    r = call(base_url, fleet.tech, "POST", f"/api/v1/incidents/{i}/pause-request", json=DENIED)
    assert r.status_code == 202, r.text
    assert r.json()["repeated"] is False
    again = call(base_url, fleet.tech, "POST", f"/api/v1/incidents/{i}/pause-request",
                 json=DENIED)
    assert again.json()["repeated"] is True  # a second tap asks nobody twice
    after = call(base_url, fleet.acme, "GET", f"/api/v1/incidents/{i}").json()
    assert (after["state"], after["deadline"]) == (before["state"], before["deadline"])
    asked = [e for e in after["timeline"] if e["kind"] == "pause_requested"]
    assert len(asked) == 1
    assert asked[0]["actor"] == "technician:t-ana"
    assert asked[0]["detail"] == {"reason": "customer_denied_access", "to": "t-maria",
                                  "note": DENIED["note"]}
    told = db.execute("SELECT recipient, reason, body FROM outbox WHERE ref LIKE %s",
                      (f"pause-request:{i}:%",)).fetchall()
    assert [(t[0], t[1]) for t in told] == [("t-maria", "pause_requested")]
    assert "security desk" in told[0][2]
    # the manager then pauses through the pause API, and a new request may follow a resume
    assert call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{i}/pause",
                json={"reason": "customer_denied_access"}).json()["state"] == "paused"
    r = call(base_url, fleet.tech, "POST", f"/api/v1/incidents/{i}/pause-request", json=DENIED)
    assert r.status_code == 409
    assert "only a running clock" in r.json()["detail"]


@pytest.mark.parametrize(("body", "words"), [
    ({"reason": "technician_busy"}, "customer_denied_access"),
    ({}, "reason"),
    ({"reason": "customer_denied_access", "note": "x" * 1001}, "note"),
])
def test_bad_pause_requests_get_a_422(base_url: str, fleet: Fleet, who: dict[str, str | None],
                                      open_incident: OpenIncident, body: dict[str, Any],
                                      words: str) -> None:
    i = open_incident().incident
    r = call(base_url, fleet.tech, "POST", f"/api/v1/incidents/{i}/pause-request", json=body)
    assert r.status_code == 422
    assert words in r.json()["detail"]
