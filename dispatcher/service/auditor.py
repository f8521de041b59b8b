"""The auditor: every open incident must have a future next action, or someone hears of it.

The check is pure (facts about each open incident and `now` in, the stranded incidents
out); the adapter reads the facts in one query and logs an ERROR naming the stranded
incidents. The dispatcher loop runs it every few seconds and `/metrics` exports it, so a
promise that nothing and no one is going to act on can never go unnoticed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import tuple_row

from dispatcher.store import LIVE_JOB, OPEN_SQL

log = logging.getLogger(__name__)

#: How often the dispatcher loop audits: cheap (one query over open incidents), and a
#: stranded incident is reported well inside the 5-minute acknowledgement window.
EVERY_S = 10.0
#: A due timer fires within seconds (bench/timers: p99 under 2 s), a change is planned and a
#: waiting incident assigned on the next pass; anything still waiting two minutes past its
#: time is stuck, not pending.
STUCK_AFTER = timedelta(minutes=2)
#: At most this many incidents are named in one log line (the gauge carries the count).
NAMED_IN_LOG = 20


@dataclass(frozen=True)
class Facts:
    """What the audit needs to know of one open incident."""

    incident: int
    state: str
    changed_at: datetime  # the incident row's last change
    last_activity: datetime  # its last change or timer fire, whichever is later
    next_timer_due: datetime | None  # the soonest unfired timer
    plan_pending: bool  # changed since the dispatcher last planned its timers
    open_pause: bool  # paused: the clock waits for the customer or a manager to resume
    live_job: bool
    next_assign_at: datetime | None  # with no live job: when assignment is tried again
    escalated_to: str | None  # the person of the latest recorded escalation
    #: the latest timer that fired 'stale' because telemetry already proved the fix: the
    #: next pass records the verification (timers.fixed_by), so the incident waits on it
    stale_fire_at: datetime | None = None


@dataclass(frozen=True)
class Stranded:
    """An open incident nothing and no one is going to act on."""

    incident: int
    state: str
    age_s: float  # seconds since its last activity


@dataclass(frozen=True)
class Audit:
    """One audit's result."""

    at: datetime
    checked: int
    stranded: tuple[Stranded, ...]

    @property
    def oldest_s(self) -> float:
        """The longest a stranded incident has gone without activity (0 when none)."""
        return max((s.age_s for s in self.stranded), default=0.0)


def next_action(f: Facts, now: datetime) -> str | None:
    """What will happen next to the incident, or None when nothing will."""
    if f.open_pause:
        return "paused: waits for the customer or a manager to resume"
    if f.plan_pending and now - f.changed_at <= STUCK_AFTER:
        return "the dispatcher plans its timers on its next pass"
    if not f.live_job and f.state == "detected" and (
            f.next_assign_at is None or now - f.next_assign_at <= STUCK_AFTER):
        return "the dispatcher assigns it on its next pass"
    if f.stale_fire_at is not None and now - f.stale_fire_at <= STUCK_AFTER:
        return "a timer found the fix proven: the dispatcher verifies it on its next pass"
    if f.next_timer_due is not None and now - f.next_timer_due <= STUCK_AFTER:
        return f"a timer is due at {f.next_timer_due.isoformat()}"
    if f.escalated_to is not None:
        return f"escalated to {f.escalated_to}, who owns it now"
    return None


def check(facts: Iterable[Facts], now: datetime) -> Audit:
    """The audit of these open incidents at `now`."""
    rows = list(facts)
    stranded = tuple(
        Stranded(f.incident, f.state, max(0.0, (now - f.last_activity).total_seconds()))
        for f in rows if next_action(f, now) is None)
    return Audit(now, len(rows), stranded)


# Set-based (one pass over each table's rows of open incidents, joined by hash): a query
# per incident cost seconds with 5,000 open incidents.
FACTS_SQL = """
WITH open AS (
    SELECT id, state, updated_at, planned_at, next_assign_at FROM incidents
    WHERE state IN """ + OPEN_SQL + """),
t AS (
    SELECT incident_id, max(fired_at) AS last_fired,
           min(due_at) FILTER (WHERE fired_at IS NULL) AS next_due,
           max(fired_at) FILTER (WHERE outcome = 'stale') AS last_stale
    FROM timers WHERE incident_id IN (SELECT id FROM open) GROUP BY incident_id),
p AS (
    SELECT DISTINCT incident_id FROM pauses
    WHERE ended_at IS NULL AND incident_id IN (SELECT id FROM open)),
j AS (
    SELECT DISTINCT incident_id FROM jobs
    WHERE state IN """ + LIVE_JOB + """
    AND incident_id IN (SELECT id FROM open)),
e AS (
    SELECT DISTINCT ON (incident_id) incident_id, detail->>'to' AS person
    FROM incident_events
    WHERE kind = 'escalated' AND detail->>'to' IS NOT NULL
    AND incident_id IN (SELECT id FROM open)
    ORDER BY incident_id, at DESC, id DESC)
SELECT o.id, o.state, o.updated_at, greatest(o.updated_at, t.last_fired), t.next_due,
       o.planned_at IS DISTINCT FROM o.updated_at, p.incident_id IS NOT NULL,
       j.incident_id IS NOT NULL, o.next_assign_at, e.person, t.last_stale
FROM open o LEFT JOIN t ON t.incident_id = o.id LEFT JOIN p ON p.incident_id = o.id
LEFT JOIN j ON j.incident_id = o.id LEFT JOIN e ON e.incident_id = o.id
ORDER BY o.id
"""


def read_facts(conn: Any) -> list[Facts]:
    """The facts of every open incident (works on a connection of any row factory)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return [Facts(*r) for r in cur.execute(FACTS_SQL)]


def run(conn: Any, now: datetime) -> Audit:
    """Audit the open incidents; log an ERROR naming the stranded ones."""
    result = check(read_facts(conn), now)
    if result.stranded:
        named = ", ".join(f"#{s.incident} ({s.state}, {s.age_s:.0f} s)"
                          for s in result.stranded[:NAMED_IN_LOG])
        more = len(result.stranded) - NAMED_IN_LOG
        log.error("%d open incident(s) without a next action (no timer, no one assigned or "
                  "told): %s%s", len(result.stranded), named,
                  f" and {more} more" if more > 0 else "")
    return result
