"""Proactive jobs on a real database: who gets planned work, when, with which spare, once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dispatcher.service import proactive
from dispatcher.store import spares
from tests.dispatcher.world import at, live_job, open_incident, setup_fleet, tick

Conn = psycopg.Connection[Any]


@pytest.fixture
def url(pg_url: str) -> str:
    """Site iad1 (UTC) with three disk technicians, manager t-maria, host web-01."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
    return pg_url


def predict(conn: Conn, kind: str = "disk", component: str = "disk:S1",
            host: str = "web-01") -> int:
    """An open prediction as the collector writes it."""
    row = conn.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES (%s, 'iad1', 'acme', %s, %s,"
        " 'smart_counter_rising', 'smart_baseline', 'sda', %s, %s) RETURNING id",
        (host, component, kind, at(-30), at(-30))).fetchone()
    assert row is not None
    return int(row[0])


def planned(conn: Conn, prediction: int) -> tuple[int, str, str, str | None, str | None] | None:
    """(id, technician, state, spare part, part note) of the prediction's newest job."""
    row = conn.execute("SELECT id, technician_id, state, spare_part, part_note FROM"
                       " proactive_jobs WHERE prediction_id = %s ORDER BY id DESC LIMIT 1",
                       (prediction,)).fetchone()
    return (row[0], row[1], row[2], row[3], row[4]) if row else None


def only(conn: Conn, *active: str) -> None:
    """Leave only these technicians active."""
    conn.execute("UPDATE technicians SET active = (id = ANY(%s))", (list(active),))


def test_planned_for_a_technician_of_the_site_with_the_skill(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO technicians (id, name, site_id, role, skills)"
                     " VALUES ('t-dee', 'Dee', 'iad1', 'technician', '{memory}')")
        dimm = predict(conn, "dimm", "dimm:A1")
        disk = predict(conn, "disk", "disk:S1")
        tick(url, at(0))
        dimm_job, disk_job = planned(conn, dimm), planned(conn, disk)
    assert dimm_job is not None
    assert dimm_job[1:3] == ("t-dee", "planned")
    assert disk_job is not None
    assert disk_job[1] in ("t-ana", "t-bob", "t-cy")


def test_nobody_on_shift_waits_then_is_planned_when_the_shift_starts(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        only(conn, "t-ana", "t-maria")
        conn.execute("UPDATE technicians SET shift_start = '13:00', shift_end = '21:00'"
                     " WHERE id = 't-ana'")
        p = predict(conn)
        tick(url, at(0))  # 09:00 UTC: off shift
        assert planned(conn, p) is None
        retry = conn.execute("SELECT next_plan_at FROM predictions WHERE id = %s",
                             (p,)).fetchone()
        assert retry == (at(15),)  # RETRY: 15 minutes later, not every pass
        tick(url, at(4 * 60 + 5))  # 13:05
        job = planned(conn, p)
    assert job is not None
    assert job[1] == "t-ana"


def test_failures_first_a_technician_on_an_sla_job_gets_no_planned_work(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        only(conn, "t-ana", "t-maria")
        incident = open_incident(conn, at(0))
        p = predict(conn)
        tick(url, at(0))
        sla = live_job(conn, incident)
        assert sla is not None
        assert sla[1] == "t-ana"
        assert planned(conn, p) is None
        tick(url, at(16))  # the retry: she is still on the failure
        assert planned(conn, p) is None
        conn.execute("UPDATE jobs SET state = 'done', finished_at = %s WHERE id = %s",
                     (at(30), sla[0]))
        tick(url, at(31))  # free again, and the next retry is due
        job = planned(conn, p)
    assert job is not None
    assert job[1] == "t-ana"


def test_a_planned_job_does_not_hold_back_a_failure(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        only(conn, "t-ana", "t-maria")
        p = predict(conn)
        tick(url, at(0))
        assert planned(conn, p) is not None
        incident = open_incident(conn, at(1))
        tick(url, at(1))
        sla = live_job(conn, incident)
    assert sla is not None
    assert sla[1] == "t-ana"


def test_the_last_spare_of_a_part_is_kept_for_failures(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        spares.import_rows(conn, [spares.SpareRow("iad1", "ST8000NM000A", "disk", 1)], "test",
                           at(-1))
        first = predict(conn, component="disk:S1")
        tick(url, at(0))
        job = planned(conn, first)
        assert job is not None
        assert job[3] is None
        assert job[4] is not None
        assert "kept for failures" in job[4]
        spares.adjust(conn, "iad1", "ST8000NM000A", 2, "delivery", "test", at(1))
        second = predict(conn, component="disk:S2")
        tick(url, at(2))
        job2 = planned(conn, second)
        stock = spares.stock(conn, "iad1")[0]
    assert job2 is not None
    assert job2[3] == "ST8000NM000A"
    assert (stock.count, stock.available) == (3, 2)


def test_no_note_when_the_site_keeps_no_stock_of_the_kind(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        p = predict(conn)
        tick(url, at(0))
        job = planned(conn, p)
    assert job is not None
    assert job[3:] == (None, None)


def test_two_dispatchers_at_once_plan_each_prediction_once(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [predict(conn, component=f"disk:S{i}") for i in range(10)]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def worker() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            counts.append(proactive.plan(conn, at(0)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT prediction_id, count(*) FROM proactive_jobs"
                            " GROUP BY prediction_id").fetchall()
        load = dict(conn.execute("SELECT technician_id, count(*) FROM proactive_jobs"
                                 " GROUP BY technician_id").fetchall())
    assert sum(counts) == 10
    assert sorted(r[0] for r in rows) == ids
    assert all(r[1] == 1 for r in rows)
    assert max(load.values()) <= 4  # MAX_LIVE_PER_TECH: spread over the three technicians


def test_replacement_seen_by_the_collector_closes_the_job_and_uses_the_spare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        spares.import_rows(conn, [spares.SpareRow("iad1", "ST8000NM000A", "disk", 3)], "test",
                           at(-1))
        p = predict(conn)
        tick(url, at(0))
        job = planned(conn, p)
        assert job is not None
        assert job[3] == "ST8000NM000A"
        # what collector/births.py does when a new serial appears in the slot
        conn.execute("UPDATE predictions SET state = 'done', closed_at = %s WHERE id = %s",
                     (at(50), p))
        tick(url, at(51))
        row = conn.execute("SELECT state, finished_by FROM proactive_jobs WHERE id = %s",
                           (job[0],)).fetchone()
        held = conn.execute("SELECT state FROM spare_reservations WHERE proactive_job_id = %s",
                            (job[0],)).fetchone()
        stock = spares.stock(conn, "iad1")[0]
    assert row == ("done", "telemetry")
    assert held == ("consumed",)
    assert (stock.count, stock.available) == (2, 2)


def test_a_daily_reminder_and_nothing_else(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        only(conn, "t-ana", "t-maria")
        conn.execute("INSERT INTO contacts (person_id, channel, address)"
                     " VALUES ('t-ana', 'email', 'ana@example.com')")
        p = predict(conn)
        tick(url, at(0))
        tick(url, at(23 * 60))
        tick(url, at(24 * 60))
        tick(url, at(24 * 60 + 30))
        reasons = [r[0] for r in conn.execute(
            "SELECT reason FROM outbox WHERE recipient = 't-ana' ORDER BY id")]
        job = planned(conn, p)
        reminded = conn.execute("SELECT reminded_at FROM proactive_jobs WHERE prediction_id = %s",
                                (p,)).fetchone()
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()
    assert reasons == ["proactive_planned", "proactive_reminder"]
    assert reminded == (at(0) + timedelta(days=1),)
    assert job is not None
    assert job[2] == "planned"
    assert incidents == (0,)  # no SLA incident, no timer, no credit


def test_a_false_alarm_is_not_planned_again_for_a_week(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        p = predict(conn)
        tick(url, at(0))
        job = planned(conn, p)
        assert job is not None
        # what POST .../dismiss does; the collector's rule still fires and re-opens it
        conn.execute("UPDATE proactive_jobs SET state = 'dismissed', finished_at = %s,"
                     " finished_by = 'technician:t-ana' WHERE id = %s", (at(10), job[0]))
        conn.execute("UPDATE predictions SET state = 'dismissed', closed_at = %s WHERE id = %s",
                     (at(10), p))
        again = predict(conn)
        tick(url, at(11))
        assert planned(conn, again) is None
        wait = conn.execute("SELECT next_plan_at FROM predictions WHERE id = %s",
                            (again,)).fetchone()
        assert wait == (at(10) + timedelta(days=7),)
        tick(url, at(10) + timedelta(days=7))
        assert planned(conn, again) is not None
