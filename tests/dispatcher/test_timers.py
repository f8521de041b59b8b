"""Every timed rule on a real database: engine passes at explicit `now` values."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.dispatcher.world import (
    T0,
    act,
    at,
    events,
    heal,
    live_job,
    open_incident,
    pause,
    resume,
    setup_fleet,
    tick,
)


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        yield conn


def escalations(db: psycopg.Connection[Any], incident: int) -> list[tuple[str, str, float]]:
    """(step, to, minutes after T0) of each escalation."""
    return [(e["step"], e["to"], (e["at"] - T0).total_seconds() / 60)
            for e in events(db, incident, "escalated")]


def test_ack_timeout_transfers_once_then_escalates_to_the_manager(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert live_job(db, i)[1:] == ("t-ana", "dispatched")  # type: ignore[index]
    tick(pg_url, at(4 + 59 / 60))  # 4:59: still inside the window
    assert live_job(db, i)[1] == "t-ana"  # type: ignore[index]
    tick(pg_url, at(5))  # 5:00: the first miss moves it to the next best technician
    assert live_job(db, i)[1:] == ("t-bob", "dispatched")  # type: ignore[index]
    [moved] = events(db, i, "reassigned")
    assert (moved["from"], moved["to"], moved["at"]) == ("t-ana", "t-bob", at(5))
    assert moved["reason"] == "t-ana did not acknowledge within 5 min"
    tick(pg_url, at(9.99))
    assert escalations(db, i) == []
    tick(pg_url, at(10))  # the second miss: the manager, never a third technician
    [step] = events(db, i, "escalated")
    assert (step["step"], step["to"], step["role"]) == ("ack_timeout", "t-maria", "manager")
    assert "never passed to a third technician" in step["reason"]
    for m in (11, 20, 30, 44):
        tick(pg_url, at(m))
    jobs = db.execute("SELECT technician_id FROM jobs WHERE incident_id = %s ORDER BY id",
                      (i,)).fetchall()
    assert [j[0] for j in jobs] == ["t-ana", "t-bob"]
    assert escalations(db, i) == [("ack_timeout", "t-maria", 10)]


def test_a_decline_is_the_one_transfer_so_the_next_miss_escalates(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert act(pg_url, i, "decline", at(1), reason="stuck in another room")
    tick(pg_url, at(1))
    assert live_job(db, i)[1] == "t-bob"  # type: ignore[index]
    tick(pg_url, at(5.9))  # t-ana's old window has no effect any more
    assert events(db, i, "reassigned") == []
    tick(pg_url, at(6))
    assert escalations(db, i) == [("ack_timeout", "t-maria", 6)]
    assert live_job(db, i)[1] == "t-bob"  # type: ignore[index]


def test_an_acknowledged_job_is_not_moved(pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert act(pg_url, i, "acknowledge", at(4.5))
    tick(pg_url, at(5))
    tick(pg_url, at(30))
    assert live_job(db, i)[1:] == ("t-ana", "acknowledged")  # type: ignore[index]
    assert events(db, i, "reassigned") == []
    stale = db.execute("SELECT outcome FROM timers WHERE incident_id = %s AND kind ="
                       " 'ack_timeout'", (i,)).fetchall()
    assert stale == [("stale",)]


@pytest.mark.parametrize(("on_site_at", "expected"), [
    (None, [("risk", "t-maria", 45)]),  # no one on site at 45 min
    (44.9, []),  # on site in time: no risk
])
def test_risk_at_45_minutes_with_no_one_on_site(
        pg_url: str, db: psycopg.Connection[Any], on_site_at: float | None,
        expected: list[tuple[str, str, float]]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert act(pg_url, i, "acknowledge", at(1))
    if on_site_at is not None:
        assert act(pg_url, i, "on-site", at(on_site_at))
    tick(pg_url, at(44.99))
    assert escalations(db, i) == []
    tick(pg_url, at(45))
    tick(pg_url, at(46))
    assert escalations(db, i) == expected


@pytest.mark.parametrize("executive", [True, False])
def test_breach_notifies_the_executive_once(pg_url: str, executive: bool) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db, executive=executive)
        i = open_incident(db)
        tick(pg_url, at(0))
        assert act(pg_url, i, "acknowledge", at(1))
        assert act(pg_url, i, "on-site", at(2))
        tick(pg_url, at(59.99))
        assert escalations(db, i) == []
        tick(pg_url, at(60))
        tick(pg_url, at(61))
        tick(pg_url, at(120))
        if executive:
            assert escalations(db, i) == [("breach", "t-eve", 60)]
        else:  # no one to tell: logged and recorded on the timer, not in the timeline
            assert escalations(db, i) == []
        outcome = db.execute("SELECT outcome, fired_at FROM timers WHERE incident_id = %s"
                             " AND kind = 'breach'", (i,)).fetchall()
        assert outcome == [("acted" if executive else "nobody", at(60))]


def test_verification_timeout_reopens_and_notifies_the_manager(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    for action, m in (("acknowledge", 1), ("on-site", 5)):
        assert act(pg_url, i, action, at(m))
    assert act(pg_url, i, "replaced", at(10), serial="NEW1")
    tick(pg_url, at(39.99))
    assert live_job(db, i)[2] == "replaced"  # type: ignore[index]
    tick(pg_url, at(40))
    assert live_job(db, i)[2] == "on_site"  # type: ignore[index]
    state = db.execute("SELECT state FROM incidents WHERE id = %s", (i,)).fetchone()
    assert state == ("on_site",)
    [reopened] = events(db, i, "reopened")
    assert (reopened["to"], reopened["at"]) == ("t-maria", at(40))
    # Replaced again: a new window from the new mark; telemetry confirms inside it.
    assert act(pg_url, i, "replaced", at(41), serial="NEW2")
    heal(db, i, at(50))
    tick(pg_url, at(71))
    assert len(events(db, i, "reopened")) == 1
    assert db.execute("SELECT state FROM incidents WHERE id = %s", (i,)).fetchone() == (
        "verified",)


def test_pause_shifts_the_deadline_the_breach_and_the_credit(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert act(pg_url, i, "acknowledge", at(1))
    assert act(pg_url, i, "on-site", at(2))
    assert pause(pg_url, i, at(10))
    assert not pause(pg_url, i, at(11), reason="customer_maintenance_window")  # already paused
    tick(pg_url, at(60))  # while paused: no breach
    assert escalations(db, i) == []
    assert resume(pg_url, i, at(30))
    row = db.execute("SELECT state, deadline FROM incidents WHERE id = %s", (i,)).fetchone()
    assert row == ("on_site", at(80))  # shifted by exactly the 20 paused minutes
    tick(pg_url, at(79.99))
    assert escalations(db, i) == []
    tick(pg_url, at(80))
    assert escalations(db, i) == [("breach", "t-eve", 80)]
    stored = db.execute("SELECT reason, started_at, ended_at, started_by, ended_by FROM pauses"
                        " WHERE incident_id = %s", (i,)).fetchall()
    assert stored == [("customer_denied_access", at(10), at(30), "customer:acme",
                       "customer:acme")]
    heal(db, i, at(80) + (at(1) - at(0)) / 60)  # 80:01: one second late
    tick(pg_url, at(82))
    credit = db.execute("SELECT amount, late_seconds FROM credits WHERE incident_id = %s",
                        (i,)).fetchall()
    assert credit == [(Decimal("22.50"), 1.0)]


def test_a_fix_during_a_pause_ends_it_and_beats_the_shifted_deadline(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    i = open_incident(db)
    tick(pg_url, at(0))
    assert pause(pg_url, i, at(50), reason="customer_maintenance_window")
    heal(db, i, at(90))  # fixed in the maintenance window, 40 min after the pause began
    tick(pg_url, at(95))
    row = db.execute("SELECT state, deadline, verified_at FROM incidents WHERE id = %s",
                     (i,)).fetchone()
    assert row == ("verified", at(100), at(90))
    assert db.execute("SELECT count(*) FROM credits").fetchone() == (0,)


def test_two_dispatchers_and_repeated_passes_fire_each_timer_once(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    ids = [open_incident(db) for _ in range(6)]
    for m in (0, 0, 5, 5, 10, 10, 45, 60, 60, 61):
        tick(pg_url, at(m), worker="a")
        tick(pg_url, at(m), worker="b")
    for i in ids:
        # six jobs, three technicians: a transfer to a busy one may be foreseen late
        # (breach_foreseen, once per dispatch at most); each timer's step once
        steps = sorted(s for s, _, _ in escalations(db, i) if s != "breach_foreseen")
        assert steps == ["ack_timeout", "breach", "risk"]
        assert len(events(db, i, "reassigned")) <= 1
        foreseen = [e["job"] for e in events(db, i, "escalated")
                    if e["step"] == "breach_foreseen"]
        assert len(foreseen) == len(set(foreseen))
    fired = db.execute("SELECT fired_by, count(*) FROM timers WHERE fired_at IS NOT NULL"
                       " GROUP BY fired_by").fetchall()
    assert sum(n for _, n in fired) == db.execute("SELECT count(*) FROM timers").fetchone()[0]
