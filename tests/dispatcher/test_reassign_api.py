"""A manager's reassignment and the candidates with their predicted fixes, over real HTTP
and PostgreSQL: the job moves through the transition table, bad requests get a 4xx that
says what to do, a manager of another site is told the incident is not theirs."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from dispatcher.store import tokens
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def people(db: Conn, fleet: Fleet) -> dict[str, str]:
    """t-bob, a second disk technician at iad1; t-sam, who manages sfo1 only."""
    db.execute("INSERT INTO sites (id, name, timezone, manager_id) VALUES"
               " ('sfo1', 'San Francisco 1', 'UTC', 't-sam')")
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}'),"
               " ('t-sam', 'Sam', 'sfo1', 'manager', '{}')")
    return {"manager": fleet.manager, "other": tokens.create(db, Role.MANAGER, None, "t-sam")}


def _post(base_url: str, token: str, incident: int, body: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/api/v1/incidents/{incident}/reassign", json=body,
                      headers={"Authorization": f"Bearer {token}"})


def test_the_job_moves_to_the_technician_picked(
        base_url: str, db: Conn, people: dict[str, str], open_incident: OpenIncident) -> None:
    opened = open_incident()
    got = httpx.get(f"{base_url}/api/v1/incidents/{opened.incident}/candidates",
                    headers={"Authorization": f"Bearer {people['manager']}"}).json()
    assert got["current"] == "t-ana"
    assert [(c["technician"], c["name"]) for c in got["items"]] == [("t-bob", "Bob")]
    assert got["items"][0]["late_minutes"] < 0  # 5 walk + 15 repair + 1: well in time
    r = _post(base_url, people["manager"], opened.incident,
              {"technician": "t-bob", "reason": "Ana is at the loading dock"})
    assert r.status_code == 200, r.text
    assert (r.json()["assignee"], r.json()["state"]) == ("t-bob", "dispatched")
    jobs = db.execute("SELECT technician_id, state FROM jobs WHERE incident_id = %s ORDER BY id",
                      (opened.incident,)).fetchall()
    assert jobs == [("t-ana", "cancelled"), ("t-bob", "dispatched")]
    row = db.execute("SELECT actor, detail FROM incident_events WHERE incident_id = %s AND"
                     " kind = 'reassigned'", (opened.incident,)).fetchone()
    assert row is not None
    assert row[0] == "manager:t-maria"
    assert (row[1]["from"], row[1]["to"], row[1]["reason"]) == (
        "t-ana", "t-bob", "Ana is at the loading dock")


@pytest.mark.parametrize(("state", "body", "status", "words"), [
    ("dispatched", {"technician": "t-ana"}, 409, "already has this job"),
    ("dispatched", {"technician": "t-nobody"}, 422, "cannot take it: pick a technician"),
    ("dispatched", {"technician": ""}, 422, "technician"),
    ("dispatched", {}, 422, "technician"),
    ("on_site", {"technician": "t-bob"}, 409, "only a job not yet at the rack"),
    ("detected", {"technician": "t-bob"}, 409, "only a job not yet at the rack"),
])
def test_bad_requests_say_what_to_do(base_url: str, people: dict[str, str],
                                     open_incident: OpenIncident, state: str, body: Any,
                                     status: int, words: str) -> None:
    opened = open_incident(state=state)
    r = _post(base_url, people["manager"], opened.incident, body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_manager_of_another_site_is_told_it_is_not_theirs(
        base_url: str, people: dict[str, str], open_incident: OpenIncident) -> None:
    opened = open_incident()
    for incident in (opened.incident, 999_999):
        r = _post(base_url, people["other"], incident, {"technician": "t-bob"})
        assert r.status_code == 404
        assert r.json()["detail"] == f"no incident {incident} at your sites"
        r = httpx.get(f"{base_url}/api/v1/incidents/{incident}/candidates",
                      headers={"Authorization": f"Bearer {people['other']}"})
        assert r.status_code == 404
    foreseen = httpx.get(f"{base_url}/api/v1/foreseen-breaches",
                         headers={"Authorization": f"Bearer {people['other']}"})
    assert foreseen.json() == {"items": [], "next": None}


def test_a_foreseen_breach_is_the_managers_not_the_customers(
        base_url: str, db: Conn, fleet: Fleet, open_incident: OpenIncident) -> None:
    """The foreseen breach names our other technicians and their queues: the site manager
    reads it on the timeline, the customer's timeline leaves it out (and keeps the rest)."""
    opened = open_incident()
    db.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES"
               " (%s, now(), 'dispatcher', 'escalated', %s)",
               (opened.incident, Jsonb(
                   {"step": "breach_foreseen", "late_minutes": 19.0,
                    "options": [{"technician": "t-bob", "how": "free now"}]})))

    def kinds(token: str) -> list[tuple[str, str | None]]:
        got = httpx.get(f"{base_url}/api/v1/incidents/{opened.incident}",
                        headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200, got.text
        return [(e["kind"], (e.get("detail") or {}).get("step")) for e in got.json()["timeline"]]

    assert ("escalated", "breach_foreseen") in kinds(fleet.manager)
    customer = kinds(fleet.acme)
    assert ("escalated", "breach_foreseen") not in customer
    assert customer  # the rest of the timeline is still there
