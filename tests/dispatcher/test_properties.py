"""Property test on the real database: random events, clock steps and dispatcher deaths.

Whatever the order, the promise's invariants hold after every step: at most one credit per
incident and the right one, never a third technician, a clock that never runs backwards,
one live job at most per incident and its state mirrored by the incident, each timer acting
at most once, and no timer left unfired once its time has passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.domain import credit, sla
from dispatcher.service import timers
from dispatcher.service.engine import assign_new, run_pass, verify_open
from tests.dispatcher.world import (
    T0,
    P,
    act,
    heal,
    open_incident,
    pause,
    resume,
    setup_fleet,
)

REASONS = ("customer_denied_access", "customer_maintenance_window")
LIVE = ("dispatched", "acknowledged", "on_site", "replaced")

ops = st.one_of(
    st.tuples(st.just("open"), st.sampled_from([60.0, 30.0, 10.0])),
    st.tuples(st.just("step"), st.sampled_from([0.5, 2.0, 5.0, 7.0, 15.0, 31.0, 61.0])),
    st.tuples(st.just("pass"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("die"), st.integers(0, 3)),  # abandoned midway through a pass
    st.tuples(st.just("stall"), st.integers(0, 1)),  # one holds locks while the other runs
    st.tuples(st.just("act"), st.integers(0, 9),
              st.sampled_from(["acknowledge", "decline", "on-site", "replaced"])),
    st.tuples(st.just("heal"), st.integers(0, 9)),
    st.tuples(st.just("pause"), st.integers(0, 9), st.sampled_from(REASONS)),
    st.tuples(st.just("resume"), st.integers(0, 9)),
)


@dataclass
class World:
    """The database under test and the injected clock."""

    url: str
    conn: psycopg.Connection[Any]
    now: datetime = T0
    incidents: list[int] = field(default_factory=list)

    def pick(self, n: int) -> int | None:
        return self.incidents[n % len(self.incidents)] if self.incidents else None


@pytest.fixture
def world(pg_url: str) -> Iterator[World]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        yield World(pg_url, conn)


def reset(w: World) -> None:
    w.conn.execute("TRUNCATE timers, pauses, credits, incident_events, jobs, components,"
                   " incidents RESTART IDENTITY CASCADE")
    w.now, w.incidents = T0, []


def connect(url: str) -> psycopg.Connection[Any]:
    """A dispatcher's connection; a lock wait would be a bug, so it fails fast."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET lock_timeout = '5s'")
    return conn


def die(w: World, where: int) -> None:
    """A dispatcher that does part of a pass and dies before committing it."""
    with connect(w.url) as conn, conn.transaction(force_rollback=True):
        verify_open(conn, w.now)
        if where >= 1:
            assign_new(conn, w.now)
        if where >= 2:
            timers.plan_pending(conn, P, w.now)
        if where >= 3:
            timers.fire_due(conn, P, w.now, "dying", limit=1)


def stall(w: World, other: int) -> None:
    """Dispatcher B claims a timer and stalls; A runs a whole pass; B then dies or commits."""
    with connect(w.url) as b:
        tx = b.transaction(force_rollback=other == 0)
        tx.__enter__()
        timers.fire_due(b, P, w.now, "b", limit=1)
        with connect(w.url) as a:
            run_pass(a, P, w.now, "a")
        tx.__exit__(None, None, None)


def apply(w: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "open":
        w.incidents.append(open_incident(w.conn, w.now, op[1]))
    elif kind == "step":
        w.now += timedelta(minutes=op[1])
    elif kind == "pass":
        with connect(w.url) as conn:
            run_pass(conn, P, w.now, op[1])
    elif kind == "die":
        die(w, op[1])
    elif kind == "stall":
        stall(w, op[1])
    elif (i := w.pick(op[1])) is None:
        return
    elif kind == "act":
        body = {"reason": "busy"} if op[2] == "decline" else (
            {"serial": "NEW"} if op[2] == "replaced" else {})
        act(w.url, i, op[2], w.now, **body)
    elif kind == "heal":
        if not w.conn.execute("SELECT 1 FROM components WHERE id = %s",
                              (f"disk:NEW-{i}",)).fetchone():
            heal(w.conn, i, w.now)
    elif kind == "pause":
        pause(w.url, i, w.now, op[2])
    elif kind == "resume":
        resume(w.url, i, w.now)


def check(w: World) -> None:
    """Every invariant of the promise, read back from the database."""
    c = w.conn
    for (i, state, detected, sla_min, deadline, verified, assignee) in c.execute(
            "SELECT id, state, detected_at, sla_minutes, deadline, verified_at, assignee"
            " FROM incidents"):
        pauses = [sla.Pause(a, b) for a, b in c.execute(
            "SELECT started_at, ended_at FROM pauses WHERE incident_id = %s", (i,))]
        status = sla.status(detected, sla_min, pauses, verified, max(w.now, verified or w.now))
        assert status.elapsed >= timedelta(0), f"incident {i}: the clock ran backwards"
        assert status.deadline >= detected + timedelta(minutes=sla_min)
        if state != "paused":
            assert deadline == status.deadline, f"incident {i}: stored deadline is stale"
        jobs = c.execute("SELECT technician_id, state FROM jobs WHERE incident_id = %s"
                         " ORDER BY id", (i,)).fetchall()
        assert len(jobs) <= 2, f"incident {i}: a third technician {jobs}"
        live = [j for j in jobs if j[1] in LIVE]
        assert len(live) <= 1, f"incident {i}: two live jobs {jobs}"
        if state in LIVE:
            assert live, f"incident {i} is '{state}' without a live job"
            assert live[0] == (assignee, state), f"incident {i} '{state}' vs {jobs}"
        if state == "detected":
            assert not live, f"incident {i} waits for a technician but has {live}"
        credits = c.execute("SELECT amount FROM credits WHERE incident_id = %s",
                            (i,)).fetchall()
        expected = credit.compute(status.deadline, verified, Decimal("450.00"),
                                  credit.CreditPolicy()) if verified else None
        assert [r[0] for r in credits] == ([expected.amount] if expected else [])
    twice = c.execute("SELECT detail->>'timer' FROM incident_events WHERE detail ? 'timer'"
                      " GROUP BY 1 HAVING count(*) > 1").fetchall()
    assert twice == [], f"timers that acted twice: {twice}"


def drain(w: World) -> None:
    """Long after everything is due, two passes leave no due timer unfired."""
    w.now += timedelta(hours=6)
    for name in ("a", "b"):
        with connect(w.url) as conn:
            run_pass(conn, P, w.now, name)
    missed = w.conn.execute("SELECT count(*) FROM timers WHERE fired_at IS NULL AND due_at <= %s",
                            (w.now,)).fetchone()
    assert missed == (0,)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(ops, min_size=5, max_size=30))
def test_the_promise_holds_under_any_sequence(world: World, steps: list[tuple[Any, ...]]) -> None:
    reset(world)
    apply(world, ("open", 60.0))
    for op in steps:
        apply(world, op)
        check(world)
    drain(world)
    check(world)
