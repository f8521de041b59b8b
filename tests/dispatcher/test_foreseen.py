"""A breach foreseen at dispatch is told to the site manager at once (issue 16, item 5).

Measured before: a fix predicted 19 minutes late at dispatch reached no one until the
45-minute risk timer. Here the only technician is 63 minutes' walk away (63 + 15 repair + 1
verification = 79 minutes: 19 late); the manager's outbox row exists right after the pass
that dispatched, with the prediction and the options. Real PostgreSQL, the real engine pass.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from dispatcher import metrics_promise
from dispatcher.domain import assign, foresee, score
from tests.dispatcher.world import T0, at, events, open_incident, tick

UTC_ZONE = ZoneInfo("UTC")


def _fleet(db: psycopg.Connection[Any], walk: float, techs: str = "('t-ana', 'Ana')") -> None:
    """Site iad1 whose racks are `walk` minutes away; disk technicians; manager t-maria."""
    db.execute("INSERT INTO sites (id, name, timezone, manager_id, walk_minutes) VALUES"
               " ('iad1', 'Ashburn 1', 'UTC', 't-maria', %s)", (f'{{"*": {walk}}}',))
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) SELECT id, name,"
               f" 'iad1', 'technician', '{{disk}}' FROM (VALUES {techs}) AS t(id, name)")
    db.execute("INSERT INTO technicians (id, name, site_id, role) VALUES"
               " ('t-maria', 'Maria', 'iad1', 'manager')")
    db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
               " ('t-maria', 'email', 'maria@example.net')")
    db.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
    db.execute("INSERT INTO hosts (id, customer_id, site_id, monthly_fee)"
               " VALUES ('web-01', 'acme', 'iad1', 450.00)")


def _outbox(db: psycopg.Connection[Any], person: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute(
        "SELECT reason, body FROM outbox WHERE recipient = %s ORDER BY id", (person,))]


def test_far_technician_tells_the_manager_at_dispatch_with_the_options(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        _fleet(db, 63)
        incident = open_incident(db)
        tick(pg_url, at(0))
        told = _outbox(db, "t-maria")
        assert len(told) == 1, told
        reason, body = told[0]
        assert reason == "escalated"
        assert "Breach foreseen at dispatch: t-ana's fix is predicted at 10:19Z, 19 min past" \
               " the deadline 10:00Z." in body
        assert "No other technician or spare would be sooner" in body
        (entry,) = events(db, incident, "escalated")
        assert entry["step"] == "breach_foreseen"
        assert entry["late_minutes"] == 19.0
        assert entry["at"] == T0  # at dispatch, not at the 45-minute risk point
        job = db.execute("SELECT id FROM jobs WHERE incident_id = %s", (incident,)).fetchone()
        assert job is not None
        assert entry["job"] == job[0]
        tick(pg_url, at(1))  # told once per dispatch: the next pass adds nothing
        assert len(_outbox(db, "t-maria")) == 1
        assert len(events(db, incident, "escalated")) == 1
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:  # as /metrics reads it
        (counter,) = [m for m in metrics_promise.families(conn)
                      if m.name == "hourglass_breaches_foreseen"]
        assert [s.value for s in counter.samples if s.name.endswith("_total")] == [1]


def test_options_name_a_sooner_technician_with_the_fix_time(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        _fleet(db, 50, "('t-ana', 'Ana'), ('t-bob', 'Bob')")
        first = open_incident(db)
        tick(pg_url, at(0))  # 50 + 15 + 1 = 66 min: one of them takes the first, 6 min late
        second = open_incident(db, at(1))
        tick(pg_url, at(1))
        (a,) = events(db, first, "escalated")
        (b,) = events(db, second, "escalated")
        assert a["late_minutes"] == 6.0
        assert b["late_minutes"] == 6.0  # the other technician, free
        # the first's option: the other technician, free now at the time of its dispatch
        assert [(o["name"], o["how"], o["late_minutes"]) for o in a["options"]] == [
            (b["technician"], "free now", 6.0)]
        assert {a["technician"], b["technician"]} == {"t-ana", "t-bob"}
        assert "Options: " in _outbox(db, "t-maria")[0][1]


def test_a_fix_that_fits_tells_no_one(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        _fleet(db, 5)
        incident = open_incident(db)
        tick(pg_url, at(0))
        assert db.execute("SELECT state FROM incidents WHERE id = %s",
                          (incident,)).fetchone() == ("dispatched",)
        assert events(db, incident, "escalated") == []
        assert _outbox(db, "t-maria") == []


def _profile(tid: str, busy: float = 0) -> score.Profile:
    tech = assign.Technician(tid, "iad1", "technician", frozenset({"disk"}),
                             T0.time().replace(hour=0), T0.time().replace(hour=0))
    return score.Profile(tech, T0 + timedelta(minutes=busy))


def test_busy_technician_is_offered_taken_off_their_job_and_a_spare_elsewhere() -> None:
    job = score.Job(1, "disk", None, T0 + timedelta(minutes=60), spare=False)
    layout = score.Layout({"*": 10.0}, 3.0)
    ana, bob = _profile("t-ana"), _profile("t-bob", busy=40)
    choice = score.Choice("t-ana", T0 + timedelta(hours=4, minutes=26), timedelta(0))
    f = foresee.foresee(job, choice, [ana, bob], layout, "iad1", T0, UTC_ZONE,
                        [("iad2", 3)])
    assert f is not None
    assert f.late_minutes == 206.0
    # bob: 4 h courier either way; taken off his job now rather than after it (40 min)
    # spare from iad2: 90 min carried + 10 walk + 15 repair + 1 verify = 116 min
    assert [(o.kind, o.name, o.how, o.late_minutes) for o in f.options] == [
        ("spare", "iad2", "spare carried from iad2", 56.0),
        ("technician", "t-bob", "taken off their current job", 206.0)]
    assert "iad2 (spare carried from iad2): fix 10:56Z, 56 min late" in foresee.sentence(f)


def test_no_breach_foreseen_when_the_fix_is_in_time() -> None:
    job = score.Job(1, "disk", None, T0 + timedelta(minutes=60))
    choice = score.Choice("t-ana", T0 + timedelta(minutes=60), timedelta(0))
    assert foresee.foresee(job, choice, [_profile("t-ana")], score.Layout(), "iad1", T0,
                           UTC_ZONE) is None


def test_a_timers_reassignment_foreseen_late_is_told_for_the_new_job(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        _fleet(db, 40, "('t-ana', 'Ana'), ('t-bob', 'Bob')")
        incident = open_incident(db)
        tick(pg_url, at(0))  # 40 + 15 + 1 = 56 min: in time, nothing told
        assert events(db, incident, "escalated") == []
        tick(pg_url, at(5.5))  # not acknowledged: the one transfer, 5.5 + 56 = 61.5 min
        (moved,) = events(db, incident, "reassigned")
        (entry,) = events(db, incident, "escalated")
        assert (entry["step"], entry["job"], entry["technician"]) == (
            "breach_foreseen", moved["job"], moved["to"])
        assert entry["late_minutes"] == 1.5
        assert len(_outbox(db, "t-maria")) == 1
