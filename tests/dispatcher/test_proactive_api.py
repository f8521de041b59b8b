"""Proactive jobs over HTTP: a permission matrix per route, idempotent actions, clear 4xx.

Real server, real database; jobs are written as the planning pass writes them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import spares, tokens
from schemas.states import Role
from tests.web.conftest import Fleet

Conn = psycopg.Connection[tuple[Any, ...]]
CALLERS = ("anonymous", "customer", "other_technician", "technician", "manager", "admin")


@pytest.fixture(scope="module")
def callers(db: Conn, fleet: Fleet) -> dict[str, str | None]:
    """A token per kind of caller; t-ana is the assigned technician, t-bob another one."""
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}') ON CONFLICT DO NOTHING")
    return {"anonymous": None, "customer": fleet.acme,
            "other_technician": tokens.create(db, Role.TECHNICIAN, None, "t-bob"),
            "technician": fleet.tech, "manager": fleet.manager,
            "admin": tokens.create(db, Role.ADMIN, None, None)}


def planned_job(db: Conn, tech: str = "t-ana", part: str | None = None) -> tuple[int, int]:
    """(prediction, proactive job) on web-01 (acme), planned for `tech` as the pass does."""
    now = datetime.now(UTC)
    (pid,) = db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme', %s, 'disk',"
        " 'smart_counter_rising', 'smart_baseline', 'sdb', %s, %s) RETURNING id",
        (f"disk:{uuid.uuid4().hex[:8]}", now, now)).fetchone() or (0,)
    (jid,) = db.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id,"
                        " planned_at) VALUES (%s, 'iad1', %s, %s) RETURNING id",
                        (pid, tech, now)).fetchone() or (0,)
    if part:
        db.execute("INSERT INTO spare_reservations (proactive_job_id, site_id, part,"
                   " reserved_at) VALUES (%s, 'iad1', %s, %s)", (jid, part, now))
    return int(pid), int(jid)


def call(base_url: str, token: str | None, method: str, path: str,
         body: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if key:
        headers["Idempotency-Key"] = key
    return httpx.request(method, base_url + path, headers=headers, json=body)


ACTION_STATUS = dict(anonymous=401, customer=403, other_technician=403, technician=200,
                     manager=200, admin=403)
MATRIX = [
    ("GET", "", None, dict(anonymous=401, customer=403, other_technician=200, technician=200,
                           manager=200, admin=200)),
    ("POST", "/acknowledge", None, ACTION_STATUS),
    ("POST", "/done", {"serial": "ZA9NEW", "note": "swapped before it failed"}, ACTION_STATUS),
    ("POST", "/dismiss", {"reason": "counter reset after a firmware update"}, ACTION_STATUS),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "action", "body", "expected"), MATRIX,
                         ids=["list", "acknowledge", "done", "dismiss"])
def test_permission_matrix(base_url: str, db: Conn, callers: dict[str, str | None],
                           caller: str, method: str, action: str, body: dict[str, Any] | None,
                           expected: dict[str, int]) -> None:
    _, job = planned_job(db)
    path = "/api/v1/proactive-jobs?mine=true&limit=200" if method == "GET" \
        else f"/api/v1/proactive-jobs/{job}{action}"
    r = call(base_url, callers[caller], method, path, body)
    assert r.status_code == expected[caller], r.text
    if r.status_code >= 400:
        assert len(r.json()["detail"]) > 10
    elif method == "GET":
        owners = {item["technician"] for item in r.json()["items"]}
        if caller in ("technician", "other_technician"):  # only their own
            assert owners <= {"t-ana" if caller == "technician" else "t-bob"}
        assert (job in {i["id"] for i in r.json()["items"]}) == (caller != "other_technician"
                                                                  and caller != "manager")


def test_done_closes_the_prediction_and_uses_the_spare(base_url: str, db: Conn,
                                                       callers: dict[str, str | None]) -> None:
    spares.import_rows(db, [spares.SpareRow("iad1", "HUS-PROACTIVE", "disk", 3)], "test",
                       datetime.now(UTC))
    pid, job = planned_job(db, part="HUS-PROACTIVE")
    tech = callers["technician"]
    assert call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/acknowledge",
                key="k-ack-" + str(job)).json()["state"] == "acknowledged"
    r = call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/done",
             {"serial": "NEW1", "note": "done"}, key="k-done-" + str(job))
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["new_serial"]) == ("done", "NEW1")
    assert r.json()["prediction"]["state"] == "done"
    assert db.execute("SELECT state FROM predictions WHERE id = %s", (pid,)).fetchone() == ("done",)
    stock = next(s for s in spares.stock(db, "iad1") if s.part == "HUS-PROACTIVE")
    assert (stock.count, stock.available) == (2, 2)
    # the customer sees the planned work's state, read-only, on its predictions
    items = call(base_url, callers["customer"], "GET", "/api/v1/predictions").json()["items"]
    mine = next(i for i in items if i["id"] == pid)
    assert mine["job"]["state"] == "done"
    assert mine["job"]["planned_at"].endswith("Z")


def test_dismiss_is_a_false_alarm_and_releases_the_spare(
        base_url: str, db: Conn, callers: dict[str, str | None]) -> None:
    spares.import_rows(db, [spares.SpareRow("iad1", "HUS-DISMISS", "disk", 2)], "test",
                       datetime.now(UTC))
    pid, job = planned_job(db, part="HUS-DISMISS")
    r = call(base_url, callers["manager"], "POST", f"/api/v1/proactive-jobs/{job}/dismiss",
             {"reason": "the counter was reset"})
    assert r.status_code == 200, r.text
    assert r.json()["finished_by"] == "manager:t-maria"
    assert db.execute("SELECT state FROM predictions WHERE id = %s",
                      (pid,)).fetchone() == ("dismissed",)
    assert db.execute("SELECT state FROM spare_reservations WHERE proactive_job_id = %s",
                      (job,)).fetchone() == ("released",)


def test_a_retried_tap_with_its_key_changes_nothing_twice(
        base_url: str, db: Conn, callers: dict[str, str | None]) -> None:
    _, job = planned_job(db)
    tech, key = callers["technician"], f"retry-{job}"
    first = call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/acknowledge", key=key)
    again = call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/acknowledge", key=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    reused = call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/dismiss",
                  {"reason": "not this one"}, key=key)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]


@pytest.mark.parametrize(("action", "body", "status", "says"), [
    ("done", {"serial": "ZA1"}, 422, "note"),  # the note is required
    ("done", {"serial": "has space", "note": "x"}, 422, "serial"),
    ("dismiss", {"reason": "no"}, 422, "reason"),  # too short to say why
    ("dismiss", None, 422, "body"),
])
def test_bad_bodies_are_a_422_with_a_detail(base_url: str, db: Conn,
                                            callers: dict[str, str | None], action: str,
                                            body: dict[str, Any] | None, status: int,
                                            says: str) -> None:
    _, job = planned_job(db)
    r = call(base_url, callers["technician"], "POST",
             f"/api/v1/proactive-jobs/{job}/{action}", body)
    assert r.status_code == status
    assert says in r.json()["detail"]


def test_unknown_job_wrong_state_and_bad_filter(base_url: str, db: Conn,
                                                callers: dict[str, str | None]) -> None:
    tech = callers["technician"]
    r = call(base_url, tech, "POST", "/api/v1/proactive-jobs/999999/acknowledge")
    assert r.status_code == 404
    assert "mine=true" in r.json()["detail"]
    _, job = planned_job(db)
    call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/dismiss", {"reason": "false"})
    r = call(base_url, tech, "POST", f"/api/v1/proactive-jobs/{job}/acknowledge")
    assert r.status_code == 409
    assert "dismissed" in r.json()["detail"]
    r = call(base_url, tech, "GET", "/api/v1/proactive-jobs?state=someday")
    assert r.status_code == 422
    assert "state" in r.json()["detail"]
