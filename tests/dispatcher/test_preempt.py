"""A failure takes the spare held by planned work (a proactive job without a clock), in the
dispatch's transaction, exactly once, never from a job its technician has acknowledged."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from dispatcher.service import assignment
from dispatcher.store import spares
from tests.dispatcher.world import at, events, open_incident, setup_fleet, tick

Conn = psycopg.Connection[Any]
PART = "ST8000NM000A"


@pytest.fixture
def url(pg_url: str) -> str:
    """Site iad1 (UTC) with three disk technicians, manager t-maria, host web-01."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        conn.execute("INSERT INTO contacts (person_id, channel, address) SELECT id, 'email',"
                     " id || '@example.com' FROM technicians")
    return pg_url


def predict(conn: Conn, component: str) -> int:
    """An open disk prediction as the collector writes it."""
    row = conn.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme', %s, 'disk',"
        " 'smart_counter_rising', 'smart_baseline', 'sda', %s, %s) RETURNING id",
        (component, at(-30), at(-30))).fetchone()
    assert row is not None
    return int(row[0])


def planned_job(conn: Conn, prediction: int) -> tuple[int, str | None, str | None]:
    """(id, spare part, part note) of the prediction's job."""
    row = conn.execute("SELECT id, spare_part, part_note FROM proactive_jobs"
                       " WHERE prediction_id = %s", (prediction,)).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2]


def holder(conn: Conn, incident: int) -> str | None:
    """The state of an incident's spare reservation."""
    row = conn.execute("SELECT state FROM spare_reservations WHERE incident_id = %s",
                       (incident,)).fetchone()
    return str(row[0]) if row else None


def job_spare(conn: Conn, job: int) -> str | None:
    """The state of a proactive job's spare reservation."""
    row = conn.execute("SELECT state FROM spare_reservations WHERE proactive_job_id = %s",
                       (job,)).fetchone()
    return str(row[0]) if row else None


def two_planned_with_spares(url: str) -> tuple[int, int]:
    """Stock 3 disks; two proactive jobs each hold one (planned at minute 0 and 1): 1 free."""
    with psycopg.connect(url, autocommit=True) as conn:
        spares.import_rows(conn, [spares.SpareRow("iad1", PART, "disk", 3)], "test", at(-60))
        older = predict(conn, "disk:P1")
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        newer = predict(conn, "disk:P2")
    tick(url, at(1))
    with psycopg.connect(url, autocommit=True) as conn:
        a, b = planned_job(conn, older), planned_job(conn, newer)
        assert (a[1], b[1]) == (PART, PART)
        assert spares.stock(conn, "iad1")[0].available == 1
    return a[0], b[0]


def test_a_failure_takes_the_newest_planned_jobs_spare_instead_of_escalating(url: str) -> None:
    older, newer = two_planned_with_spares(url)
    with psycopg.connect(url, autocommit=True) as conn:
        first = open_incident(conn, detected=at(2))
        second = open_incident(conn, detected=at(3))
    tick(url, at(3))
    with psycopg.connect(url, autocommit=True) as conn:
        assert (holder(conn, first), holder(conn, second)) == ("reserved", "reserved")
        assert events(conn, first, "escalated") == []
        assert events(conn, second, "escalated") == []  # no "no spare" page to the manager
        [dispatched] = events(conn, second, "dispatched")
        assert (dispatched["spare"], dispatched["spare_from_proactive_job"]) == (PART, newer)
        assert (job_spare(conn, newer), job_spare(conn, older)) == ("released", "reserved")
        _, part, note = planned_job(conn, predict_of(conn, newer))
        assert part is None
        assert note == f"spare taken for failure incident {second}; order one"
        taken = conn.execute("SELECT actor, kind, detail FROM proactive_job_events"
                             " WHERE proactive_job_id = %s AND kind = 'spare_taken'",
                             (newer,)).fetchall()  # the plan's own steps come before
        assert taken == [("dispatcher", "spare_taken", {
            "incident": second, "part": PART, "note": note})]
        told = conn.execute("SELECT recipient FROM outbox WHERE reason ="
                            " 'proactive_spare_taken'").fetchall()
        assert len(told) <= 1  # queued only for people with a contact; never twice
        stock = spares.stock(conn, "iad1")[0]
        assert (stock.count, stock.reserved, stock.available) == (3, 3, 0)
        state = conn.execute("SELECT state FROM proactive_jobs WHERE id = %s", (newer,)).fetchone()
        assert state == ("planned",)  # the work stays planned, only without its part
    tick(url, at(4))  # a later pass takes nothing more and says nothing more
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM proactive_job_events"
                            " WHERE kind = 'spare_taken'").fetchone() == (1,)


def predict_of(conn: Conn, job: int) -> int:
    """The prediction of a proactive job."""
    row = conn.execute("SELECT prediction_id FROM proactive_jobs WHERE id = %s",
                       (job,)).fetchone()
    assert row is not None
    return int(row[0])


def test_an_acknowledged_jobs_spare_is_never_taken(url: str) -> None:
    older, newer = two_planned_with_spares(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE proactive_jobs SET state = 'acknowledged', acknowledged_at = %s",
                     (at(2),))
        first = open_incident(conn, detected=at(2))
        second = open_incident(conn, detected=at(3))
    tick(url, at(3))
    with psycopg.connect(url, autocommit=True) as conn:
        assert holder(conn, first) == "reserved"
        assert holder(conn, second) is None
        assert [e["step"] for e in events(conn, second, "escalated")] == [
            "no_spare", "breach_foreseen"]  # the depot's courier: the fix foreseen late
        assert (job_spare(conn, older), job_spare(conn, newer)) == ("reserved", "reserved")
        assert conn.execute("SELECT count(*) FROM proactive_job_events"
                            " WHERE kind = 'spare_taken'").fetchone() == (0,)


def test_a_job_a_technician_is_acting_on_right_now_is_skipped(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        spares.import_rows(conn, [spares.SpareRow("iad1", PART, "disk", 2)], "test", at(-60))
        p = predict(conn, "disk:P1")
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        job = planned_job(conn, p)[0]
        first = open_incident(conn, detected=at(1))
        second = open_incident(conn, detected=at(2))
    with psycopg.connect(url) as acting:  # a job action holds the row (not committed yet)
        acting.execute("SELECT 1 FROM proactive_jobs WHERE id = %s FOR UPDATE", (job,))
        with psycopg.connect(url, autocommit=True) as conn:
            assignment.assign_bursts(conn, at(3))  # does not wait: SKIP LOCKED
            assert holder(conn, first) == "reserved"
            assert holder(conn, second) is None
            assert [e["step"] for e in events(conn, second, "escalated")] == [
                "no_spare", "breach_foreseen"]  # the spare it counted on went: the depot
            assert job_spare(conn, job) == "reserved"
        acting.rollback()


def test_two_dispatchers_at_once_move_a_planned_spare_exactly_once(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        spares.import_rows(conn, [spares.SpareRow("iad1", PART, "disk", 2)], "test", at(-60))
        p = predict(conn, "disk:P1")
    tick(url, at(0))
    with psycopg.connect(url, autocommit=True) as conn:
        job = planned_job(conn, p)[0]
        incidents = [open_incident(conn, detected=at(1 + n)) for n in range(3)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                barrier.wait()
                assignment.assign_bursts(conn, at(5))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with psycopg.connect(url, autocommit=True) as conn:
        held = [holder(conn, i) for i in incidents]
        short = [i for i in incidents if events(conn, i, "escalated")]
        moved = conn.execute("SELECT count(*) FROM proactive_job_events WHERE"
                             " proactive_job_id = %s AND kind = 'spare_taken'", (job,)).fetchone()
        stock = spares.stock(conn, "iad1")[0]
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
        released = job_spare(conn, job)
    assert held == ["reserved", "reserved", None]  # soonest deadlines get the two spares
    assert short == [incidents[2]]
    assert moved == (1,)
    assert released == "released"
    assert (stock.count, stock.reserved) == (2, 2)
    assert jobs == (3,)  # each incident dispatched once
