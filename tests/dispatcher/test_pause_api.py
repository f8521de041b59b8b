"""Pause and resume over a real HTTP server: who may, which reasons, the shifted deadline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident

DENIED = {"reason": "customer_denied_access"}


@pytest.fixture(scope="module")
def admin(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet) -> str:
    return tokens.create(db, Role.ADMIN, None, None)


def post(base_url: str, token: str | None, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(base_url + path, headers=headers, **kw)


@pytest.mark.parametrize(("caller", "status"), [
    ("anonymous", 401), ("technician", 403), ("admin", 403), ("other_customer", 404),
    ("owner", 200), ("manager", 200)])
def test_who_may_pause(base_url: str, fleet: Fleet, admin: str, open_incident: OpenIncident,
                       caller: str, status: int) -> None:
    token = {"anonymous": None, "technician": fleet.tech, "admin": admin,
             "other_customer": fleet.globex, "owner": fleet.acme,
             "manager": fleet.manager}[caller]
    i = open_incident().incident
    r = post(base_url, token, f"/api/v1/incidents/{i}/pause", json=DENIED)
    assert r.status_code == status, r.text
    if caller == "technician":
        assert "can only request a pause" in r.json()["detail"]
    if status == 200:
        assert r.json()["state"] == "paused"
        again = post(base_url, token, f"/api/v1/incidents/{i}/resume")
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "dispatched"


@pytest.mark.parametrize("reason", ["technician_busy", "no_spare", ""])
def test_only_excluded_causes_pause_the_clock(base_url: str, fleet: Fleet,
                                              open_incident: OpenIncident, reason: str) -> None:
    i = open_incident().incident
    r = post(base_url, fleet.acme, f"/api/v1/incidents/{i}/pause", json={"reason": reason})
    assert r.status_code == 422
    assert "customer_denied_access" in r.json()["detail"]


def test_resume_shifts_the_deadline_and_the_timeline_shows_both(
        base_url: str, fleet: Fleet, open_incident: OpenIncident) -> None:
    i = open_incident().incident
    before = httpx.get(f"{base_url}/api/v1/incidents/{i}",
                       headers={"Authorization": f"Bearer {fleet.acme}"}).json()
    assert post(base_url, fleet.manager, f"/api/v1/incidents/{i}/pause",
                json={"reason": "customer_maintenance_window"}).status_code == 200
    assert post(base_url, fleet.acme, f"/api/v1/incidents/{i}/resume").status_code == 200
    assert post(base_url, fleet.acme, f"/api/v1/incidents/{i}/resume").status_code == 409
    after = httpx.get(f"{base_url}/api/v1/incidents/{i}",
                      headers={"Authorization": f"Bearer {fleet.acme}"}).json()

    def t(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    resumed = next(e for e in after["timeline"] if e["kind"] == "resumed")
    paused = next(e for e in after["timeline"] if e["kind"] == "paused")
    assert paused["actor"] == "manager:t-maria"
    assert paused["detail"]["reason"] == "customer_maintenance_window"
    assert resumed["actor"] == "customer:acme"
    shift = t(after["deadline"]) - t(before["deadline"])
    assert abs(shift.total_seconds() - resumed["detail"]["paused_seconds"]) < 1  # second-rounded
    assert after["state"] == "dispatched"


def test_a_closed_incident_cannot_be_paused(base_url: str, fleet: Fleet,
                                            open_incident: OpenIncident) -> None:
    i = open_incident(state="verified").incident
    r = post(base_url, fleet.acme, f"/api/v1/incidents/{i}/pause", json=DENIED)
    assert r.status_code == 409
