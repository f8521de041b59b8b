"""A burst through the real dispatcher and database: matched together, learned repair times,
walking time by room, one technician taking several jobs in sequence."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dispatcher.service.engine import assign_new
from tests.dispatcher.world import at, events, tick

Conn = psycopg.Connection[Any]
_SERIAL = itertools.count(1)  # unique component ids and slots


def fleet(conn: Conn, techs: dict[str, str]) -> None:
    """Site iad1 (room A 4 min, B 9 min away, pickup 3) with the given technicians."""
    conn.execute("INSERT INTO sites (id, name, manager_id, walk_minutes, spare_pickup_minutes)"
                 " VALUES ('iad1', 'Ashburn 1', 't-maria', %s, 3)", (Jsonb({"A": 4, "B": 9}),))
    for tid, skills in techs.items():
        conn.execute("INSERT INTO technicians (id, name, site_id, role, skills)"
                     " VALUES (%s, %s, 'iad1', 'technician', %s)", (tid, tid, skills.split(",")))
    conn.execute("INSERT INTO technicians (id, name, site_id, role)"
                 " VALUES ('t-maria', 'Maria', 'iad1', 'manager')")
    conn.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
    conn.execute("INSERT INTO hosts (id, customer_id, site_id, room, monthly_fee) VALUES"
                 " ('web-01', 'acme', 'iad1', 'A', 450), ('db-01', 'acme', 'iad1', 'B', 900)")


def incident(conn: Conn, kind: str, deadline_min: float, host: str = "web-01",
             state: str = "detected") -> int:
    """An incident due `deadline_min` minutes after at(0)."""
    n = next(_SERIAL)
    row = conn.execute(
        "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure, slot,"
        " state, detected_at, deadline, sla_minutes) VALUES (%s, 'iad1', 'acme', %s, %s,"
        " 'failed', %s, %s, %s, %s, 60) RETURNING id",
        (host, f"{kind}:{n}", kind, f"s{n}", state, at(deadline_min - 60),
         at(deadline_min))).fetchone()
    assert row is not None
    return int(row[0])


def history(conn: Conn, tech: str, kind: str, minutes: list[float]) -> None:
    """Past verified jobs of a technician: on site -> replaced took these minutes."""
    for i, took in enumerate(minutes):
        inc = incident(conn, kind, -1000 - 100 * i, state="closed")
        start = at(-1000 - 100 * i)
        conn.execute("INSERT INTO jobs (incident_id, technician_id, state, dispatched_at,"
                     " on_site_at, replaced_at) VALUES (%s, %s, 'done', %s, %s, %s)",
                     (inc, tech, start, start + timedelta(minutes=5),
                      start + timedelta(minutes=5 + took)))


def dispatched(conn: Conn, i: int) -> tuple[str, float]:
    """(technician, slack minutes) of an incident's dispatch."""
    [e] = events(conn, i, "dispatched")
    return e["technician"], e["slack_minutes"]


def test_burst_is_matched_so_both_promises_hold(pg_url: str) -> None:
    # A disk due in 30 min, a DIMM due in 40 that only Ana can fit. One at a time, Ana (the
    # fastest, most slack) would take the disk and the DIMM would queue behind her, late.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fleet(conn, {"t-ana": "disk,memory", "t-bo": "disk"})
        history(conn, "t-ana", "disk", [7, 8, 9])  # median 8 min
        disk, dimm = incident(conn, "disk", 30), incident(conn, "dimm", 40)
    tick(pg_url, at(0))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert dispatched(conn, disk) == ("t-bo", 30 - (4 + 15 + 1))  # walk, default, verify
        assert dispatched(conn, dimm) == ("t-ana", 40 - (4 + 25 + 1))


def test_learned_time_and_room_decide_and_one_takes_several(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fleet(conn, {"t-ana": "disk", "t-bo": "memory"})
        history(conn, "t-ana", "disk", [10, 12, 30, 50])  # median 21 min
        first = incident(conn, "disk", 50, host="db-01")  # room B: 9 min walk
        second = incident(conn, "disk", 90)
    tick(pg_url, at(0))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert dispatched(conn, first) == ("t-ana", 50 - (9 + 21 + 1))
        # the second waits for her hands: 9 + 21 of the first, then 4 + 21 + 1
        assert dispatched(conn, second) == ("t-ana", 90 - (30 + 4 + 21 + 1))
        assert conn.execute("SELECT count(*) FROM jobs WHERE technician_id = 't-ana' AND"
                            " state = 'dispatched'").fetchone() == (2,)


def test_a_busy_technician_counts_their_current_job(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fleet(conn, {"t-ana": "disk"})
        busy = incident(conn, "disk", 55, state="on_site")
        conn.execute("INSERT INTO jobs (incident_id, technician_id, state, dispatched_at)"
                     " VALUES (%s, 't-ana', 'on_site', %s)", (busy, at(-5)))
        new = incident(conn, "disk", 60)
    tick(pg_url, at(0))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # her current job still needs 4 + 15 - 5 = 14 min; then 4 + 15 + 1 for this one
        assert dispatched(conn, new) == ("t-ana", 60 - (14 + 20))


def test_a_site_another_dispatcher_is_planning_is_skipped_not_waited_for(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fleet(conn, {"t-ana": "disk"})
        i = incident(conn, "disk", 60)
    with psycopg.connect(pg_url) as other:  # holds the site's planning lock, uncommitted
        other.execute("SELECT pg_advisory_xact_lock(hashtext('hourglass-assign:' || 'iad1'))")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")  # a wait would fail the test, not hang it
            assert assign_new(conn, at(0)) == 0
            assert events(conn, i, "dispatched") == []
        other.rollback()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert assign_new(conn, at(0)) == 1
        assert dispatched(conn, i)[0] == "t-ana"
