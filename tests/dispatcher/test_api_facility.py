"""Facility incidents and predictions over HTTP: who sees what. Real server, real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.web.conftest import Fleet

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def world(db: Conn, fleet: Fleet) -> dict[str, Any]:
    """A rack r12 down with web-01 (acme) and two more hosts of globex; two predictions."""
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack) VALUES"
               " ('r12-a', 'globex', 'iad1', 'A', 'r12'), ('r12-b', 'globex', 'iad1', 'A', 'r12')")
    (fid,) = db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'A', 'r12', 'power', %s, %s, 3) RETURNING id",
        (T0, T0 + timedelta(hours=1))).fetchone() or (0,)
    (other,) = db.execute(
        "INSERT INTO facility_incidents (site_id, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'r40', 'network', %s, %s, 9) RETURNING id",
        (T0, T0 + timedelta(hours=1))).fetchone() or (0,)
    db.cursor().executemany(
        "INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id, last_message)"
        " VALUES (%s, %s, %s, %s)",
        [(fid, "web-01", "acme", T0), (fid, "r12-a", "globex", T0), (fid, "r12-b", "globex", T0),
         (other, "db-07", "globex", T0)])
    db.cursor().executemany(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, detected_at, last_seen) VALUES (%s, 'iad1', %s, 'disk:S1', 'disk',"
        " 'smart_counter_rising', 'smart_baseline', %s, %s)",
        [("web-01", "acme", T0, T0), ("db-07", "globex", T0, T0)])
    return {"fid": fid, "other": other,
            "admin": tokens.create(db, Role.ADMIN, None, None)}


def get(base_url: str, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(base_url + path, headers=headers)


def test_anonymous_is_refused_with_a_detail(base_url: str, world: dict[str, Any]) -> None:
    for path in ("/api/v1/facility-incidents", f"/api/v1/facility-incidents/{world['fid']}",
                 "/api/v1/predictions"):
        r = get(base_url, None, path)
        assert r.status_code == 401
        assert r.json()["detail"]


def test_staff_see_every_facility_incident_with_all_hosts(base_url: str, fleet: Fleet,
                                                          world: dict[str, Any]) -> None:
    for token in (fleet.tech, fleet.manager, world["admin"]):
        items = get(base_url, token, "/api/v1/facility-incidents").json()["items"]
        assert [i["id"] for i in items] == [world["other"], world["fid"]]
        rack = items[1]
        assert [h["host"] for h in rack["hosts"]] == ["r12-a", "r12-b", "web-01"]
        assert rack["rack_hosts"] == 3
        assert rack["policy"] == {"sla_minutes": 60.0, "credit_percent": 5.0,
                                  "credit_period_minutes": 30.0, "credit_cap_percent": 100.0}
        assert rack["detected_at"] == "2026-11-23T09:00:00Z"


def test_a_customer_sees_only_incidents_with_its_hosts_and_only_its_hosts(
        base_url: str, fleet: Fleet, world: dict[str, Any]) -> None:
    acme = get(base_url, fleet.acme, "/api/v1/facility-incidents").json()["items"]
    assert [(i["id"], [h["host"] for h in i["hosts"]]) for i in acme] == [
        (world["fid"], ["web-01"])]
    assert "rack_hosts" not in acme[0]
    one = get(base_url, fleet.acme, f"/api/v1/facility-incidents/{world['fid']}")
    assert [h["host"] for h in one.json()["hosts"]] == ["web-01"]
    hidden = get(base_url, fleet.acme, f"/api/v1/facility-incidents/{world['other']}")
    assert hidden.status_code == 404
    assert "facility-incidents" in hidden.json()["detail"]
    globex = get(base_url, fleet.globex, "/api/v1/facility-incidents").json()["items"]
    assert [len(i["hosts"]) for i in globex] == [1, 2]


def test_predictions_are_scoped_to_the_customer(base_url: str, fleet: Fleet,
                                                world: dict[str, Any]) -> None:
    staff = get(base_url, fleet.manager, "/api/v1/predictions").json()["items"]
    assert sorted(p["host"] for p in staff) == ["db-07", "web-01"]
    mine = get(base_url, fleet.acme, "/api/v1/predictions").json()["items"]
    assert [(p["host"], p["prediction"], p["state"]) for p in mine] == [
        ("web-01", "smart_counter_rising", "open")]
    assert get(base_url, fleet.acme, "/api/v1/predictions?host=db-07").json()["items"] == []


@pytest.mark.parametrize("path", ["/api/v1/predictions?state=maybe",
                                  "/api/v1/facility-incidents?limit=0",
                                  "/api/v1/facility-incidents/abc"])
def test_bad_input_is_a_4xx_with_a_detail(base_url: str, fleet: Fleet, world: dict[str, Any],
                                          path: str) -> None:
    r = get(base_url, fleet.manager, path)
    assert 400 <= r.status_code < 500
    assert isinstance(r.json()["detail"], str)
