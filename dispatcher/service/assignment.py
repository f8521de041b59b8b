"""Assignment adapter: claims a site's waiting incidents, scores and matches them, persists.

One transaction per site burst: the site's waiting incidents are locked (`SKIP LOCKED`) and a
transaction-level advisory lock on the site keeps two dispatchers from handing the same
technician two plans at once. Technicians' current load and learned repair times come from
the jobs table; the decisions come from dispatcher.domain.score / matching; a fitting spare
is reserved in the same transaction as the job. When none is free, a failure takes the spare
of the newest *planned* (not yet acknowledged) proactive job, in the same transaction, rather
than escalating: planned work has no clock. Only when neither exists does it escalate at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dispatcher.domain import assign, matching, policy, score
from dispatcher.fleet import SPARE_KINDS
from dispatcher.service import escalation, foresight, plans, proactive
from dispatcher.store import Conn, incidents, spares
from schemas.wake import wake

log = logging.getLogger(__name__)
BURST_LIMIT = 50  # incidents of one site planned together; more wait for the next pass
RETRY = timedelta(minutes=1)  # nobody fits: try again then (someone may come on shift)


@dataclass(frozen=True)
class Waiting:
    """A claimed incident with what the adapter needs beyond the scoring Job."""

    job: score.Job
    model: str | None
    previous: tuple[str, ...]


def assign_bursts(conn: Conn, now: datetime) -> int:
    """Dispatch every waiting incident, one site burst per transaction; the number handled."""
    done, busy_sites = 0, set[str]()
    spares.settle(conn, now)
    while True:
        with conn.transaction():
            site = _claim_site(conn, now, busy_sites)
            if site is None:
                return done
            n = _assign_site(conn, site, now)
        if n == 0:
            busy_sites.add(site)
        done += n


def _claim_site(conn: Conn, now: datetime, skip: set[str]) -> str | None:
    """The site of the most urgent waiting incident whose advisory lock this process got."""
    for (site,) in conn.execute(
            "SELECT site_id FROM incidents WHERE state = 'detected' AND (next_assign_at IS NULL"
            " OR next_assign_at <= %s) GROUP BY site_id ORDER BY min(deadline)", (now,)
            ).fetchall():
        if site in skip:
            continue
        got = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('hourglass-assign:' || %s))",
                           (site,)).fetchone()
        if got and got[0]:
            return str(site)
        skip.add(site)  # another dispatcher is planning it right now
    return None


def _assign_site(conn: Conn, site: str, now: datetime) -> int:
    """Plan and persist one site's burst; the number of incidents handled."""
    plan_of = plans.site_plan(conn, site, now)
    if plan_of is None:
        return 0
    waiting = _waiting(conn, site, now)
    if not waiting:
        return 0
    waiting = _with_spares(conn, site, waiting)
    ready = [w.job for w in waiting if len(w.previous) < assign.MAX_ASSIGNEES]
    plan = matching.batch(ready, plan_of.profiles, plan_of.layout, site, now, plan_of.zone)
    for w in waiting:
        _persist(conn, w, plan.get(w.job.id), plan_of, now)
    wake(conn, f"site:{site}")
    return len(waiting)


def _waiting(conn: Conn, site: str, now: datetime) -> list[Waiting]:
    rows = conn.execute(
        "SELECT i.id, i.kind, h.room, i.deadline, c.model, coalesce((SELECT array_agg("
        " j.technician_id ORDER BY j.id) FROM jobs j WHERE j.incident_id = i.id), '{}')"
        " FROM incidents i JOIN hosts h ON h.id = i.host_id LEFT JOIN components c ON"
        " c.host_id = i.host_id AND c.id = i.component WHERE i.site_id = %s AND i.state ="
        " 'detected' AND (i.next_assign_at IS NULL OR i.next_assign_at <= %s)"
        " ORDER BY i.deadline, i.id LIMIT %s FOR UPDATE OF i SKIP LOCKED",
        (site, now, BURST_LIMIT)).fetchall()
    return [Waiting(score.Job(r[0], r[1], r[2], r[3], None, frozenset(r[5])), r[4],
                    tuple(r[5])) for r in rows]


def _with_spares(conn: Conn, site: str, waiting: list[Waiting]) -> list[Waiting]:
    """Mark each job with whether a fitting spare is on site, soonest deadline first.

    A site with no spares rows at all does not keep its stock in Hourglass: its jobs are
    left unmarked (nothing reserved, nothing escalated) rather than all called short.
    """
    stock = spares.stock(conn, site)
    if not stock:
        return waiting
    free = {s.part: s.available for s in stock}
    kinds = {s.part: s.kind for s in stock}
    take = spares.takeable(conn, site)  # held by planned work: a failure may take them
    held = {r[0]: r[1] for r in conn.execute(
        "SELECT incident_id, part FROM spare_reservations WHERE site_id = %s AND"
        " state = 'reserved'", (site,))}
    out = []
    for w in waiting:
        if w.job.kind not in SPARE_KINDS:
            out.append(w)
            continue
        has = w.job.id in held
        if not has:
            part = next((p for p, n in free.items() if n > 0 and kinds[p] == w.job.kind
                         and spares.fits(p, w.model)), None)
            if part is not None:
                free[part] -= 1
                has = True
            else:
                part = next((p for p, n in take.items() if n > 0 and kinds.get(p) == w.job.kind
                             and spares.fits(p, w.model)), None)
                if part is not None:
                    take[part] -= 1
                    has = True
        out.append(replace(w, job=replace(w.job, spare=has)))
    return out


def _persist(conn: Conn, w: Waiting, choice: score.Choice | None, plan: plans.SitePlan,
             now: datetime) -> None:
    """Write one incident's outcome: job and spare, or a retry; escalations once each; a
    breach the prediction already foresees told to the manager at once."""
    incident, site, manager = w.job.id, plan.site, plan.manager
    if w.job.spare is False:
        _escalate_once(conn, incident, now, "no_spare", manager,
                       f"no spare {w.job.kind}{f' {w.model}' if w.model else ''} on site at "
                       f"{site}: a part must come from the depot")
    if choice is None:
        conn.execute("UPDATE incidents SET next_assign_at = %s WHERE id = %s",
                     (now + RETRY, incident))
        _escalate_once(conn, incident, now, "assignment", manager, _why_nobody(w, site))
        return
    part = spares.reserve(conn, incident, site, w.job.kind, w.model, now) \
        if w.job.spare else None
    taken: int | None = None
    if w.job.spare and part is None:  # none free: take one held by planned work
        got = spares.preempt(conn, incident, site, w.job.kind, w.model, now)
        if got is not None:
            part, taken = got
            proactive.spare_taken(conn, taken, part, incident, now)
    if w.job.spare and part is None:  # the last one went meanwhile (a stock adjustment)
        _escalate_once(conn, incident, now, "no_spare", manager,
                       f"the last spare {w.job.kind} at {site} was taken meanwhile")
    job = incidents.dispatch(conn, incident, choice.technician, now, {
        "technician": choice.technician, "transfer": len(w.previous), "spare": part,
        "predicted_fix": choice.finish.isoformat(),
        "slack_minutes": round(choice.slack.total_seconds() / 60, 1)}
        | ({"spare_from_proactive_job": taken} if taken is not None else {}))
    lost = w.job.spare and part is None  # counted on a spare that went meanwhile: the depot
    told = foresight.evaluate(conn, job, replace(w.job, spare=False) if lost else w.job,
                              choice, plan, w.model, now)
    if told is not None:
        escalation.notify(conn, incident, told.notify, now, told.ref, once=told.once)
    log.info("incident %s dispatched to %s (slack %s)", incident, choice.technician,
             choice.slack)


def _why_nobody(w: Waiting, site: str) -> str:
    if len(w.previous) >= assign.MAX_ASSIGNEES:
        return "already transferred once; a third technician is never tried"
    skill = assign.SKILL_FOR_KIND.get(w.job.kind)
    need = f"skill '{skill}'" if skill else "any skill"
    return f"no technician on shift at {site} with {need} who can finish before the shift ends"


def _escalate_once(conn: Conn, incident: int, now: datetime, step: str, manager: str | None,
                   reason: str) -> None:
    """Tell the site manager, once per incident and step (escalation.notify)."""
    escalation.notify(conn, incident, policy.Notify(step, manager, "manager", reason), now,
                      once=True)
