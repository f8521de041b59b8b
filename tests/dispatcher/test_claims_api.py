"""Claims over a real HTTP server and PostgreSQL: the permission matrix of every claim route,
the whole story (investigation, plan, answer, notice, exit survey) with its notifications,
and bad requests answered with a 4xx that says what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.dispatcher.test_api_permissions import call, who
from tests.web.conftest import Fleet, OpenIncident

__all__ = ["who"]
Conn = psycopg.Connection[tuple[Any, ...]]
ITEM = {"text": "Keep two spare disks of this model on site", "owner": "t-maria"}


def later(hours: float = 48) -> str:
    """An RFC 3339 time some hours from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


@pytest.fixture(scope="module")
def people(db: Conn, fleet: Fleet) -> dict[str, str]:
    """Acme's account team with e-mail contacts, the site manager's contact, a second manager."""
    db.execute("INSERT INTO account_people (id, name) VALUES ('am-lee', 'Lee'), ('am-kim', 'Kim')")
    db.execute("UPDATE customers SET account_manager = 'am-lee' WHERE id = 'acme'")
    db.execute("INSERT INTO account_team (customer_id, person_id) VALUES ('acme', 'am-kim')")
    db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
               " ('am-lee', 'email', 'lee@example.com'), ('am-kim', 'email', 'kim@example.com'),"
               " ('t-maria', 'email', 'maria@example.com')")
    db.execute("INSERT INTO technicians (id, name, site_id, role) VALUES"
               " ('t-eve', 'Eve', 'iad1', 'executive') ON CONFLICT DO NOTHING")
    return {"other_manager": tokens.create(db, Role.MANAGER, None, "t-eve")}


def make_claim(db: Conn, state: str = "investigating", manager: str | None = "t-maria",
               due: timedelta = timedelta(days=2), incident: int | None = None) -> int:
    """A claim of acme's in a given state, with a one-item plan unless investigating."""
    now = datetime.now(UTC)
    plan = 0 if state == "investigating" else 1
    row = db.execute("INSERT INTO claims (customer_id, incident_id, text, state, manager_id,"
                     " plan, opened_at, updated_at) VALUES ('acme', %s, 'slow disk swap', %s,"
                     " %s, %s, %s, %s) RETURNING id",
                     (incident, state, manager, plan, now, now)).fetchone()
    assert row is not None
    if plan:
        db.execute("INSERT INTO claim_plan_items (claim_id, plan, n, text, owner, due_at)"
                   " VALUES (%s, 1, 1, 'spares on site', 't-maria', %s)", (row[0], now + due))
    if state == "notice_given":
        db.execute("UPDATE claims SET notice_at = %s, notice_effective = %s WHERE id = %s",
                   (now, now + timedelta(days=30), row[0]))
    return int(row[0])


CUSTOMER_STEP = dict(anonymous=401, other_customer=404, technician=403, other_technician=403,
                     manager=403, admin=403, owner=200)
STAFF_STEP = dict(anonymous=401, owner=403, other_customer=404, technician=403,
                  other_technician=403, manager=200, admin=200)

# (route, claim state it needs, body, expected status per caller); {c} is the claim, {i} an
# acme incident.
MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("POST /api/v1/claims", "investigating", {"incident": "{i}", "text": "too slow"},
     dict(anonymous=401, owner=201, other_customer=422, technician=403, other_technician=403,
          manager=403, admin=403)),
    ("GET /api/v1/claims?state=open", "investigating", None,
     dict(anonymous=401, owner=200, other_customer=200, technician=403, other_technician=403,
          manager=200, admin=200)),
    ("GET /api/v1/claims/{c}", "investigating", None,
     dict(anonymous=401, owner=200, other_customer=404, technician=403, other_technician=403,
          manager=200, admin=200)),
    ("POST /api/v1/claims/{c}/assign", "investigating", {"manager": "t-maria"}, STAFF_STEP),
    ("POST /api/v1/claims/{c}/plan", "investigating",
     {"items": [{**ITEM, "due_at": "{later}"}]}, STAFF_STEP),
    ("POST /api/v1/claims/{c}/accept", "plan_presented", None, CUSTOMER_STEP),
    ("POST /api/v1/claims/{c}/reject", "plan_presented", {"comment": "not enough"},
     CUSTOMER_STEP),
    ("POST /api/v1/claims/{c}/items/1/done", "plan_accepted", None, STAFF_STEP),
    ("POST /api/v1/claims/{c}/notice", "plan_rejected", None, CUSTOMER_STEP),
    ("POST /api/v1/claims/{c}/exit-survey", "notice_given", {"score": 2, "comment": "slow"},
     CUSTOMER_STEP),
]


def _fill(value: Any, c: int, i: int) -> Any:
    """Put the claim, incident and a future time into a body template."""
    if isinstance(value, dict):
        return {k: _fill(v, c, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, c, i) for v in value]
    if value == "{i}":
        return i
    if value == "{later}":
        return later()
    return value


@pytest.mark.parametrize(("route", "state", "body", "expected"), MATRIX,
                         ids=[r for r, *_ in MATRIX])
def test_permission_matrix(base_url: str, db: Conn, who: dict[str, str | None],
                           people: dict[str, str], open_incident: OpenIncident, route: str,
                           state: str, body: dict[str, Any] | None,
                           expected: dict[str, int]) -> None:
    method, path = route.split(" ")
    for caller, status in expected.items():
        c, i = make_claim(db, state), open_incident().incident
        r = call(base_url, who[caller], method, path.format(c=c),
                 json=_fill(body, c, i) if body is not None else None)
        assert r.status_code == status, f"{caller}: {route} -> {r.status_code} {r.text}"
        if status >= 400:
            assert isinstance(r.json()["detail"], str)
            assert r.json()["detail"]


@pytest.mark.parametrize("route", ["plan", "items/1/done"])
def test_only_the_owning_manager_takes_owner_steps(
        base_url: str, db: Conn, who: dict[str, str | None], people: dict[str, str],
        route: str) -> None:
    c = make_claim(db, "investigating" if route == "plan" else "plan_accepted")
    body = {"items": [{**ITEM, "due_at": later()}]} if route == "plan" else None
    r = call(base_url, people["other_manager"], "POST", f"/api/v1/claims/{c}/{route}", json=body)
    assert r.status_code == 403
    assert "owned by t-maria" in r.json()["detail"]
    # taking it over with assign makes it theirs
    assert call(base_url, people["other_manager"], "POST", f"/api/v1/claims/{c}/assign",
                json={"manager": "t-eve"}).status_code == 200
    r = call(base_url, people["other_manager"], "POST", f"/api/v1/claims/{c}/{route}", json=body)
    assert r.status_code == 200, r.text


def outbox(db: Conn, claim: int) -> dict[str, list[str]]:
    """Each recipient's message reasons about one claim, in order."""
    got: dict[str, list[str]] = {}
    for person, reason in db.execute("SELECT recipient, reason FROM outbox WHERE ref LIKE %s"
                                     " ORDER BY id", (f"claim:{claim}:%",)):
        got.setdefault(person, []).append(reason)
    return got


def test_a_missed_plan_lets_the_customer_leave_without_penalty(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None],
        people: dict[str, str], open_incident: OpenIncident) -> None:
    i = open_incident().incident
    r = call(base_url, fleet.acme, "POST", "/api/v1/claims",
             json={"incident": i, "text": "The disk took three hours to replace."})
    assert r.status_code == 201, r.text
    claim = r.json()
    c = claim["id"]
    assert (claim["state"], claim["manager"], claim["incident"]) == ("investigating", "t-maria", i)
    assert c in {x["id"] for x in call(base_url, fleet.manager, "GET",
                                       "/api/v1/claims?state=open").json()["items"]}
    # no plan yet: no notice
    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice")
    assert r.status_code == 409
    assert "no plan has been presented" in r.json()["detail"]

    r = call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/plan", json={"items": [
        {**ITEM, "due_at": later(24)},
        {"text": "Review of shift coverage", "owner": "am-lee", "due_at": later(72)}]})
    assert r.status_code == 200, r.text
    assert [x["owner"] for x in r.json()["plan"]] == ["t-maria", "am-lee"]
    assert call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/accept").json()["state"] == \
        "plan_accepted"
    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice")
    assert r.status_code == 409
    assert "next item is due" in r.json()["detail"]
    assert call(base_url, fleet.manager, "POST",
                f"/api/v1/claims/{c}/items/2/done").json()["state"] == "plan_accepted"

    # a day passes and item 1 is not done: its due time is now behind us
    db.execute("UPDATE claim_plan_items SET due_at = now() - interval '1 minute'"
               " WHERE claim_id = %s AND n = 1", (c,))
    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice")
    assert r.status_code == 200, r.text
    notice = r.json()["notice"]
    given = datetime.fromisoformat(notice["given_at"])
    assert datetime.fromisoformat(notice["effective_at"]) - given == timedelta(days=30)
    assert abs(datetime.now(UTC) - given) < timedelta(minutes=1)
    assert call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice").status_code == 409

    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/exit-survey",
             json={"score": 3, "comment": "Too slow, twice."})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "exited"
    assert done["exit_survey"]["score"] == 3
    assert [e["kind"] for e in done["timeline"]] == [
        "opened", "plan_presented", "plan_accepted", "item_done", "notice_given", "exit_survey"]
    assert done["timeline"][4]["detail"]["missed_items"] == [1]
    assert c not in {x["id"] for x in call(base_url, fleet.manager, "GET",
                                           "/api/v1/claims?state=open").json()["items"]}
    # every step reached the account team; the manager hears of what the customer did
    sent = outbox(db, c)
    steps = ["claim_opened", "claim_plan_presented", "claim_plan_accepted", "claim_item_done",
             "claim_notice_given", "claim_exit_survey"]
    assert sent["am-lee"] == steps
    assert sent["am-kim"] == steps
    assert sent["t-maria"] == ["claim_opened", "claim_plan_accepted", "claim_notice_given",
                               "claim_exit_survey"]  # not her own steps


def test_a_rejected_plan_opens_notice_and_a_new_plan_keeps_the_old_one(
        base_url: str, fleet: Fleet, who: dict[str, str | None], people: dict[str, str]) -> None:
    r = call(base_url, fleet.acme, "POST", "/api/v1/claims",
             json={"text": "Nobody answered for an hour."})
    c = r.json()["id"]
    assert r.json()["manager"] is None  # no incident, no site: a manager must take it
    r = call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/plan",
             json={"items": [{**ITEM, "due_at": later()}]})
    assert r.status_code == 409
    assert "assign a manager" in r.json()["detail"]
    assert call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/assign",
                json={"manager": "t-maria"}).json()["manager"] == "t-maria"
    call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/plan",
         json={"items": [{**ITEM, "due_at": later()}]})
    assert call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/reject",
                json={"comment": "Not enough."}).json()["state"] == "plan_rejected"
    r = call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/plan",
             json={"items": [{"text": "A second technician on nights", "owner": "t-maria",
                              "due_at": later(10)}]})
    assert r.json()["state"] == "plan_presented"
    assert r.json()["plan"][0]["text"] == "A second technician on nights"
    assert r.json()["earlier_plans"][0]["items"][0]["text"] == ITEM["text"]
    call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/reject")
    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "notice_given"


def test_doing_every_item_of_an_accepted_plan_resolves_the_claim(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None]) -> None:
    c = make_claim(db, "plan_accepted")
    r = call(base_url, fleet.manager, "POST", f"/api/v1/claims/{c}/items/1/done")
    assert r.json()["state"] == "resolved"
    assert r.json()["plan"][0]["done_at"] is not None
    r = call(base_url, fleet.acme, "POST", f"/api/v1/claims/{c}/notice")
    assert r.status_code == 409
    assert "carried out in full" in r.json()["detail"]


def test_customer_lists_only_its_own_claims(base_url: str, db: Conn, fleet: Fleet,
                                            who: dict[str, str | None]) -> None:
    mine = make_claim(db)
    theirs = call(base_url, fleet.globex, "POST", "/api/v1/claims",
                  json={"text": "globex is unhappy"}).json()["id"]
    own = {x["id"] for x in call(base_url, fleet.acme, "GET",
                                 "/api/v1/claims?customer=globex&limit=200").json()["items"]}
    assert mine in own
    assert theirs not in own


@pytest.mark.parametrize(
    ("token", "method", "path", "state", "body", "status", "words"),
    [
        ("acme", "POST", "/api/v1/claims", None, {}, 422, "text"),
        ("acme", "POST", "/api/v1/claims", None, {"text": "x"}, 422, "text"),
        ("acme", "POST", "/api/v1/claims", None, {"text": "bad", "incident": "abc"}, 422,
         "incident"),
        ("acme", "POST", "/api/v1/claims", None, {"text": "bad", "incident": 999999}, 422,
         "not one of your incidents"),
        ("manager", "GET", "/api/v1/claims?state=bogus", None, None, 422, "'open'"),
        ("manager", "GET", "/api/v1/claims/999999", None, None, 404, "no claim"),
        ("manager", "GET", "/api/v1/claims/abc", None, None, 422, "claim_id"),
        ("manager", "POST", "/api/v1/claims/{c}/assign", "investigating", {"manager": "t-ana"},
         422, "not an active manager"),
        ("manager", "POST", "/api/v1/claims/{c}/assign", "investigating", {}, 422, "manager"),
        ("manager", "POST", "/api/v1/claims/{c}/plan", "investigating", {"items": []}, 422,
         "at least one item"),
        ("manager", "POST", "/api/v1/claims/{c}/plan", "investigating",
         {"items": [{**ITEM, "due_at": "2026-01-01T10:00:00"}]}, 422, "due_at"),
        ("manager", "POST", "/api/v1/claims/{c}/plan", "investigating",
         {"items": [{**ITEM, "due_at": "2020-01-01T10:00:00Z"}]}, 422, "in the past"),
        ("manager", "POST", "/api/v1/claims/{c}/plan", "investigating",
         {"items": [{**ITEM, "owner": "nobody", "due_at": "2099-01-01T10:00:00Z"}]}, 422,
         "unknown owner"),
        ("manager", "POST", "/api/v1/claims/{c}/plan", "plan_accepted",
         {"items": [{**ITEM, "due_at": "2099-01-01T10:00:00Z"}]}, 409, "accepted"),
        ("manager", "POST", "/api/v1/claims/{c}/items/7/done", "plan_accepted", None, 404,
         "items 1 to 1"),
        ("acme", "POST", "/api/v1/claims/{c}/accept", "investigating", None, 409,
         "no plan waiting"),
        ("acme", "POST", "/api/v1/claims/{c}/exit-survey", "notice_given", {"score": 11}, 422,
         "score"),
        ("acme", "POST", "/api/v1/claims/{c}/exit-survey", "plan_rejected", {"score": 5}, 409,
         "follows notice"),
        ("acme", "POST", "/api/v1/claims/{c}/reject", "plan_presented", {"comment": 5}, 422,
         "comment"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None], token: str,
        method: str, path: str, state: str | None, body: dict[str, Any] | None, status: int,
        words: str) -> None:
    c = make_claim(db, state) if state else 0
    r = call(base_url, getattr(fleet, token), method, path.format(c=c), json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_retried_claim_with_the_same_key_opens_one_investigation(
        base_url: str, db: Conn, fleet: Fleet, who: dict[str, str | None]) -> None:
    body = {"text": "Asked three times for an update, no answer."}

    def post(json: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{base_url}/api/v1/claims", json=json, headers={
            "Authorization": f"Bearer {fleet.acme}", "Idempotency-Key": "claim-k1"})

    first, again = post(body), post(body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    row = db.execute("SELECT count(*) FROM claims WHERE text = %s", (body["text"],)).fetchone()
    assert row == (1,)
    other = post({"text": "different"})
    assert other.status_code == 422
    assert "already used" in other.json()["detail"]
