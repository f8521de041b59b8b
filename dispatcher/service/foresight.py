"""A breach foreseen at dispatch, told to the site manager at once (dispatcher.domain.foresee).

Asked in the dispatch's own transaction (the assignment's site burst, a timer's or a
manager's reassignment), whose caller records the answer with escalation.notify, so the
timeline entry is written exactly once per dispatch and never lost to a crash between the
two. The entry is an escalation of step ``breach_foreseen`` naming the
job it was foreseen for: the outbox tells the manager on every channel they have (the staff
notification path), and /ops shows it while that job is the incident's live one; a later
dispatch whose fix fits clears it there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import tuple_row

from dispatcher.domain import foresee, policy, score
from dispatcher.service import plans
from dispatcher.store import LIVE_JOB, Conn, spares

log = logging.getLogger(__name__)
STEP = "breach_foreseen"


def elsewhere(conn: Conn, site: str, kind: str, model: str | None) -> list[tuple[str, int]]:
    """Other sites holding a free spare that fits, most first."""
    found: dict[str, int] = {}
    for s in spares.stock(conn):
        if s.site != site and s.kind == kind and s.available > 0 and spares.fits(s.part, model):
            found[s.site] = found.get(s.site, 0) + s.available
    return sorted(found.items(), key=lambda x: (-x[1], x[0]))


@dataclass(frozen=True)
class Told:
    """What to tell the manager: the escalation and its timeline detail."""

    notify: policy.Notify
    ref: dict[str, Any]

    @property
    def once(self) -> bool:
        """With no manager the entry is still the timeline's (and /ops's) word, once per
        incident; with one, the dispatch's own transaction makes it once per dispatch."""
        return self.notify.to is None


def evaluate(conn: Conn, job: int, w: score.Job, choice: score.Choice, plan: plans.SitePlan,
             model: str | None, now: datetime) -> Told | None:
    """The breach a dispatch's predicted fix already foresees, as an escalation; None when
    the fix fits. `w` is the job as dispatched (spare False: the depot's part)."""
    chosen = next((p for p in plan.profiles if p.tech.id == choice.technician), None)
    if w.spare is False and chosen is not None:  # the depot's part: the fix waits for it
        done = score.finish(w, chosen, plan.layout, max(now, chosen.busy_until))
        if done is not None and done > choice.finish:
            choice = score.Choice(choice.technician, done, w.deadline - done)
    if choice.finish <= w.deadline:
        return None
    others = elsewhere(conn, plan.site, w.kind, model) if w.spare is False else []
    f = foresee.foresee(w, choice, plan.profiles, plan.layout, plan.site, now, plan.zone,
                        others)
    if f is None:
        return None
    log.warning("incident %s: breach foreseen at dispatch, %s min late", w.id, f.late_minutes)
    return Told(policy.Notify(STEP, plan.manager, "manager", foresee.sentence(f)),
                {"job": job, **foresee.as_detail(f)})


def after_move(conn: Conn, incident: int, job: int, technician: str, plan: plans.SitePlan,
               now: datetime) -> Told | None:
    """A job moved to `technician` (a timer's or a manager's reassignment): foreseen late?
    `plan` was read before the move, so their queue does not hold this job yet."""
    t = target(conn, incident)
    p = next((p for p in plan.profiles if p.tech.id == technician), None)
    if t is None or p is None:
        return None
    moved = score.Job(t.job.id, t.job.kind, t.job.room, t.job.deadline, t.job.spare,
                      frozenset({technician}))
    done = score.finish(moved, p, plan.layout, max(now, p.busy_until))
    if done is None:
        return None
    return evaluate(conn, job, moved, score.Choice(technician, done, t.job.deadline - done),
                    plan, t.model, now)


@dataclass(frozen=True)
class Target:
    """An open incident as scoring sees it, for a manager's reassignment."""

    job: score.Job
    site: str
    model: str | None
    current: str | None  # the live job's technician


def target(conn: Conn, incident: int) -> Target | None:
    """The incident's scoring job (its reserved spare, its live technician excluded)."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT i.id, i.kind, h.room, i.deadline, i.site_id, c.model, (SELECT j.technician_id"
        f" FROM jobs j WHERE j.incident_id = i.id AND j.state IN {LIVE_JOB}), EXISTS (SELECT 1"
        " FROM spare_reservations r WHERE r.incident_id = i.id AND r.state = 'reserved')"
        " FROM incidents i JOIN hosts h ON h.id = i.host_id LEFT JOIN components c ON"
        " c.host_id = i.host_id AND c.id = i.component WHERE i.id = %s", (incident,)).fetchone()
    if row is None:
        return None
    excluded = frozenset({row[6]}) if row[6] else frozenset()
    job = score.Job(row[0], row[1], row[2], row[3], True if row[7] else None, excluded)
    return Target(job, row[4], row[5], row[6])


def ranked(profiles: Sequence[score.Profile], layout: score.Layout, t: Target,
           now: datetime, zone: ZoneInfo) -> list[score.Choice]:
    """Every technician who could take it instead, soonest predicted fix first."""
    out = []
    for p in profiles:
        if not score.can_take(t.job, p, t.site, now, zone):
            continue
        done = score.finish(t.job, p, layout, max(now, p.busy_until))
        if done is not None:
            out.append(score.Choice(p.tech.id, done, t.job.deadline - done))
    return sorted(out, key=lambda c: (c.finish, c.technician))
