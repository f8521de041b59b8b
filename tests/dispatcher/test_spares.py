"""Spares at dispatch on a real database: reserved with the job, consumed at the verified fix,
released when the incident closes without it, escalated at once when none is on site."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from dispatcher.store import spares, tokens
from schemas.states import Role
from tests.dispatcher.world import at, events, heal, open_incident, setup_fleet, tick
from tests.web.conftest import Fleet

Conn = psycopg.Connection[Any]


@pytest.fixture
def url(pg_url: str) -> str:
    """Site iad1 with three disk technicians and manager t-maria."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
    return pg_url


def stock_up(conn: Conn, *rows: tuple[str, str, int]) -> None:
    """Put (part, kind, count) on the shelf at iad1 through the ledger."""
    spares.import_rows(conn, [spares.SpareRow("iad1", p, k, n) for p, k, n in rows], "test", at(-1))


def reservation(conn: Conn, incident: int) -> tuple[str, str] | None:
    """(part, state) of an incident's reservation."""
    row = conn.execute("SELECT part, state FROM spare_reservations WHERE incident_id = %s",
                       (incident,)).fetchone()
    return (row[0], row[1]) if row else None


def shelf(conn: Conn, part: str) -> tuple[int, int]:
    """(on the shelf, available) of one part at iad1."""
    s = next(s for s in spares.stock(conn, "iad1") if s.part == part)
    return s.count, s.available


def test_reserved_at_dispatch_consumed_at_the_verified_fix(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stock_up(conn, ("ST8000NM000A", "disk", 3))
        i = open_incident(conn)
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        assert reservation(conn, i) == ("ST8000NM000A", "reserved")
        assert shelf(conn, "ST8000NM000A") == (3, 2)
        [dispatched] = events(conn, i, "dispatched")
        assert dispatched["spare"] == "ST8000NM000A"
        assert dispatched["slack_minutes"] == 60 - (5 + 3 + 15 + 1)  # walk, pickup, repair, verify
        assert events(conn, i, "escalated") == []
        heal(conn, i, at(20))
    tick(url, at(21))
    with psycopg.connect(url, autocommit=True) as conn:
        assert reservation(conn, i) == ("ST8000NM000A", "consumed")
        assert shelf(conn, "ST8000NM000A") == (2, 2)
        last = conn.execute("SELECT delta, count_after, reason, incident_id FROM spare_movements"
                            " ORDER BY id DESC LIMIT 1").fetchone()
        assert last == (-1, 2, "consumed", i)
    tick(url, at(22))  # settled once: a second pass changes nothing
    with psycopg.connect(url, autocommit=True) as conn:
        assert shelf(conn, "ST8000NM000A") == (2, 2)


def test_no_spare_escalates_at_once_and_still_dispatches(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stock_up(conn, ("PWS-1K62A", "psu", 2))  # a spare, but not a disk
        i = open_incident(conn)
    tick(url, at(0))
    tick(url, at(1))
    with psycopg.connect(url, autocommit=True) as conn:
        [esc, foreseen] = events(conn, i, "escalated")
        assert (esc["step"], esc["to"], esc["at"]) == ("no_spare", "t-maria", at(0))
        assert "no spare disk on site at iad1" in esc["reason"]
        # the depot's courier makes the fix late: foreseen at once, with the prediction
        assert (foreseen["step"], foreseen["to"], foreseen["at"]) == (
            "breach_foreseen", "t-maria", at(0))
        assert foreseen["late_minutes"] > 180
        assert conn.execute("SELECT state, assignee FROM incidents WHERE id = %s",
                            (i,)).fetchone() == ("dispatched", "t-ana")
        assert reservation(conn, i) is None


def test_the_failed_parts_model_must_fit(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stock_up(conn, ("MZ7L3960HCJR", "disk", 5), ("ST8000NM000A", "disk", 1))
        i = open_incident(conn)
        component = conn.execute("SELECT component FROM incidents WHERE id = %s",
                                 (i,)).fetchone()
        assert component is not None
        conn.execute("INSERT INTO components (host_id, id, kind, model) VALUES"
                     " ('web-01', %s, 'disk', 'ST8000NM000A-2KE101')", (component[0],))
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        assert reservation(conn, i) == ("ST8000NM000A", "reserved")
        assert shelf(conn, "ST8000NM000A") == (1, 0)
        # one alert when the stock came in at the threshold of 1; none again going on to 0
        assert conn.execute("SELECT part, available, threshold FROM spare_alerts"
                            " WHERE part = 'ST8000NM000A'").fetchall() == [("ST8000NM000A", 1, 1)]


def test_one_spare_two_incidents_the_sooner_deadline_gets_it(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stock_up(conn, ("ST8000NM000A", "disk", 1))
        later = open_incident(conn, detected=at(0))
        sooner = open_incident(conn, detected=at(-10))
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        assert reservation(conn, sooner) == ("ST8000NM000A", "reserved")
        assert reservation(conn, later) is None
        assert [e["step"] for e in events(conn, later, "escalated")] == ["no_spare",
                                                                        "breach_foreseen"]
        assert events(conn, sooner, "escalated") == []


def test_released_when_closed_without_the_fix(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stock_up(conn, ("ST8000NM000A", "disk", 2))
        i = open_incident(conn)
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE jobs SET state = 'cancelled' WHERE incident_id = %s", (i,))
        conn.execute("UPDATE incidents SET state = 'closed', closed_at = %s WHERE id = %s",
                     (at(5), i))
    tick(url, at(6))
    with psycopg.connect(url, autocommit=True) as conn:
        assert reservation(conn, i) == ("ST8000NM000A", "released")
        assert shelf(conn, "ST8000NM000A") == (2, 2)


@pytest.mark.parametrize(("caller", "status"), [
    ("anonymous", 401), ("customer", 403), ("technician", 403), ("manager", 200), ("admin", 200)])
def test_spares_api_permissions(base_url: str, db: Conn, fleet: Fleet, caller: str,
                                status: int) -> None:
    if not spares.stock(db, "iad1"):
        spares.import_rows(db, [spares.SpareRow("iad1", "ST8000NM000A", "disk", 1)], "test",
                           at(0))
    token = {"anonymous": None, "customer": fleet.acme, "technician": fleet.tech,
             "manager": fleet.manager, "admin": tokens.create(db, Role.ADMIN, None, None)}[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(base_url + "/api/v1/spares", headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        body = r.json()
        assert body["items"] == [{"site": "iad1", "part": "ST8000NM000A", "kind": "disk",
                                  "count": 1, "reserved": 0, "available": 1,
                                  "low_stock_threshold": 1, "low": True, "location": None}]
        assert [(a["part"], a["available"]) for a in body["alerts"]] == [("ST8000NM000A", 1)]
    else:
        assert r.json()["detail"]


def test_a_site_that_keeps_no_stock_here_is_not_called_short(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        i = open_incident(conn)
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        assert events(conn, i, "escalated") == []
        assert reservation(conn, i) is None
        [dispatched] = events(conn, i, "dispatched")
        assert dispatched["spare"] is None
        assert dispatched["slack_minutes"] == 60 - (5 + 15 + 1)  # no pickup counted
