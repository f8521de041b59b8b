"""Timers as rows: planned from the incident, claimed with SKIP LOCKED, guarded before acting.

Lock order everywhere in the dispatcher: the incident row first, then its jobs; a timer is
claimed together with its incident in one statement, skipping either when locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatcher.domain import policy, promise, sla, verify
from dispatcher.service import escalation
from dispatcher.store import LIVE_JOB_STATES, OPEN_SQL, Conn, incidents, wake

log = logging.getLogger(__name__)
BATCH = 10  # timers per claim loop: `now` is at most ten fires stale under a backlog


@dataclass(frozen=True)
class Timer:
    """A claimed timer row."""

    id: int
    incident: int
    kind: str
    guard: str
    due_at: datetime


def snapshot(conn: Conn, incident: int) -> policy.Snapshot | None:
    """The incident as the policy sees it (the caller holds its row lock)."""
    row = conn.execute("SELECT state, detected_at, sla_minutes FROM incidents WHERE id = %s",
                       (incident,)).fetchone()
    if row is None:
        return None
    pauses = tuple(sla.Pause(r[0], r[1]) for r in conn.execute(
        "SELECT started_at, ended_at FROM pauses WHERE incident_id = %s ORDER BY started_at, id",
        (incident,)))
    jobs = conn.execute("SELECT id, technician_id, state, dispatched_at, replaced_at FROM jobs"
                        " WHERE incident_id = %s ORDER BY id", (incident,)).fetchall()
    live = [policy.Job(*r) for r in jobs if r[2] in LIVE_JOB_STATES]
    acted = frozenset((r[0], policy.key_of(r[1])) for r in conn.execute(
        "SELECT kind, guard FROM timers WHERE incident_id = %s AND outcome IN ('acted', 'nobody')",
        (incident,)))
    return policy.Snapshot(incident, row[0], row[1], row[2], pauses,
                           live[0] if live else None, len(jobs), acted)


def schedule(conn: Conn, incident: int, p: policy.TimerPolicy, now: datetime) -> int:
    """Insert the timers the incident's plan holds (existing ones stay); mark it planned."""
    snap = snapshot(conn, incident)
    if snap is None:
        return 0
    added = 0
    for t in policy.plan(snap, p):
        row = conn.execute(
            "INSERT INTO timers (incident_id, kind, guard, due_at, created_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (incident_id, kind, guard) DO NOTHING"
            " RETURNING id", (incident, t.kind.value, t.guard, t.due_at, now)).fetchone()
        added += row is not None
    conn.execute("UPDATE incidents SET planned_at = updated_at WHERE id = %s", (incident,))
    if added:
        wake(conn, "timer")  # a sleeping dispatcher re-reads the soonest due time
    return added


def plan_pending(conn: Conn, p: policy.TimerPolicy, now: datetime) -> int:
    """Plan every open incident changed since its last plan (new ones included)."""
    done = 0
    while True:
        with conn.transaction():
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM incidents WHERE planned_at IS DISTINCT FROM updated_at"
                f" AND state IN {OPEN_SQL} ORDER BY id LIMIT 50"
                " FOR UPDATE SKIP LOCKED")]
            for incident in ids:
                schedule(conn, incident, p, now)
        done += len(ids)
        if len(ids) < 50:
            return done


def fire_due(conn: Conn, p: policy.TimerPolicy, now: datetime, worker: str,
             limit: int = BATCH) -> int:
    """Fire up to `limit` timers due by `now`, each in its own transaction; how many fired."""
    n = 0
    while n < limit:
        with conn.transaction():
            row = conn.execute(
                "SELECT t.id, t.incident_id, t.kind, t.guard, t.due_at FROM timers t"
                " JOIN incidents i ON i.id = t.incident_id WHERE t.fired_at IS NULL"
                " AND t.due_at <= %s ORDER BY t.due_at, t.id LIMIT 1"
                " FOR UPDATE OF t, i SKIP LOCKED", (now,)).fetchone()
            if row is None:
                return n
            timer = Timer(*row)
            outcome = fire(conn, timer, p, now)
            conn.execute("UPDATE timers SET fired_at = %s, fired_by = %s, outcome = %s"
                         " WHERE id = %s", (now, worker, outcome, timer.id))
        n += 1
    return n


def fire(conn: Conn, timer: Timer, p: policy.TimerPolicy, now: datetime) -> str:
    """Re-check the guard, then act: 'acted', 'nobody' (no one to tell) or 'stale'."""
    snap = snapshot(conn, timer.incident)
    if snap is None or not policy.is_live(timer.kind, timer.guard, timer.due_at, snap, p, now):
        return "stale"
    if fixed_by(conn, timer.incident, timer.due_at):
        return "stale"  # the next pass records the verification; nothing was missed
    outcome = escalation.act(conn, snap, timer.kind, p, now,
                             {"timer": timer.id, "due_at": timer.due_at.isoformat()})
    log.info("timer %s (%s) of incident %s due %s fired: %s", timer.id, timer.kind,
             timer.incident, timer.due_at, outcome)
    return outcome


def fixed_by(conn: Conn, incident: int, due_at: datetime) -> bool:
    """Whether telemetry already proves the fix at or before `due_at`, not yet verified.

    A pass verifies before it fires, but a fix stored between the two (or by a collector
    while this dispatcher lagged) would otherwise let a timer act on a promise already kept:
    the soak test caught breach escalations for fixes proven up to 2 s before the deadline.
    """
    row = conn.execute("SELECT host_id, component, kind, slot, serial, detected_at, sla_minutes"
                       " FROM incidents WHERE id = %s", (incident,)).fetchone()
    if row is None:
        return False
    return promise.kept_by(verify.Failed(*row[1:6]), incidents.observations(conn, row[0]),
                           incidents.pauses(conn, incident), float(row[6]), due_at)


def next_due(conn: Conn) -> datetime | None:
    """The soonest unfired timer's due time."""
    row: Any = conn.execute("SELECT min(due_at) FROM timers WHERE fired_at IS NULL").fetchone()
    return row[0] if row else None
