"""The managers' live board: breaches foreseen at dispatch, who could take a job instead (with
each one's predicted fix), and the manager's reassignment. The state change is
dispatcher/store/incidents.py's (`transfer`, a row of the transition table); a reassignment
whose predicted fix is still late is foreseen again, and one that fits clears the board's
entry (it names the job it was foreseen for).
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from psycopg.rows import tuple_row
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import foresee, score
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.http.models import Model
from dispatcher.http.routes.figures import sites_of
from dispatcher.service import escalation, foresight, plans
from dispatcher.store import LIVE_JOB, OPEN_SQL, Conn, incidents
from dispatcher.store.tokens import Principal


class OptionOut(Model):
    """Something the manager can do instead, with the fix it would give."""

    kind: str
    name: str
    how: str
    predicted_fix: str | None
    late_minutes: float


class ForeseenOut(Model):
    """An open incident whose live job was predicted, at its dispatch, to fix it late."""

    id: int  # the incident
    host: str
    site: str
    state: str
    technician: str | None
    job: int
    foreseen_at: str | None
    predicted_fix: str | None
    deadline: str | None
    late_minutes: float
    options: list[OptionOut]


class ForeseenPage(Model):
    """The foreseen breaches at the caller's sites, the latest first."""

    items: list[ForeseenOut]
    next: int | None


class CandidateOut(Model):
    """A technician who could take the job, and when their fix would be verified."""

    technician: str
    name: str | None
    predicted_fix: str | None
    late_minutes: float


class CandidatePage(Model):
    """Who could take it, soonest fix first; `current` holds it now."""

    current: str | None
    items: list[CandidateOut]
    next: int | None


class TransferIn(BaseModel):
    """The technician who takes the job over, and why (on the timeline)."""

    technician: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="reassigned from the operations board", min_length=3,
                        max_length=500)


_FORESEEN = (
    "SELECT * FROM (SELECT DISTINCT ON (e.incident_id) e.incident_id, e.at, e.detail,"
    " i.host_id, i.site_id, i.state, i.deadline FROM incident_events e JOIN incidents i"
    " ON i.id = e.incident_id WHERE e.kind = 'escalated' AND e.detail->>'step' = %(step)s"
    f" AND i.state IN {OPEN_SQL} AND (%(sites)s::text[] IS NULL OR i.site_id = ANY(%(sites)s))"
    " ORDER BY e.incident_id, e.id DESC) latest WHERE EXISTS (SELECT 1 FROM jobs j WHERE"
    " j.incident_id = latest.incident_id AND j.id::text = latest.detail->>'job' AND j.state"
    f" IN {LIVE_JOB}) ORDER BY at DESC LIMIT 200")


def _foreseen(r: Any) -> dict[str, Any]:
    d = r[2]
    return {"id": r[0], "host": r[3], "site": r[4], "state": r[5],
            "technician": d.get("technician"), "job": int(d["job"]), "foreseen_at": views.ts(r[1]),
            "predicted_fix": _iso(d.get("predicted_fix")), "deadline": views.ts(r[6]),
            "late_minutes": float(d.get("late_minutes", 0)),
            "options": [{**o, "predicted_fix": _iso(o.get("predicted_fix"))}
                        for o in d.get("options", [])]}


def _iso(value: str | None) -> str | None:
    return None if value is None else views.ts(datetime.fromisoformat(value))


def _visible(conn: Conn, who: Principal, incident: int) -> foresight.Target:
    """The incident if it is at one of the caller's sites (404 otherwise, like a missing one)."""
    scope = sites_of(conn, who)
    t = foresight.target(conn, incident)
    if t is None or (scope is not None and t.site not in scope):
        raise HTTPException(404, f"no incident {incident} at your sites")
    return t


@contextmanager
def tuples(conn: Conn) -> Iterator[Conn]:
    """The connection answering tuples, as the dispatcher's services read rows (the API's
    pool answers dicts), for the length of the block."""
    before = conn.row_factory
    conn.row_factory = tuple_row
    try:
        yield conn
    finally:
        conn.row_factory = before


def _names(conn: Conn, site: str) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, name FROM technicians WHERE site_id = %s", (site,))}


def _transfer(conn: Conn, who: Principal, incident: int, body: TransferIn,
              now: datetime) -> None:
    """Move the job in the caller's transaction, then foresee the new prediction."""
    conn.execute("SELECT 1 FROM incidents WHERE id = %s FOR UPDATE", (incident,))
    t = _visible(conn, who, incident)
    if body.technician == t.current:
        raise HTTPException(409, f"{body.technician} already has this job: pick another "
                                 "technician")
    plan = plans.site_plan(conn, t.site, now)  # before the move: their queue without it
    if plan is None:
        raise HTTPException(404, f"no site {t.site}")
    p = next((p for p in plan.profiles if p.tech.id == body.technician), None)
    if p is None or not score.can_take(t.job, p, t.site, now, plan.zone):
        raise HTTPException(422, f"{body.technician} cannot take it: pick a technician of "
                                 f"{t.site} on shift with the skill (GET .../candidates)")
    try:
        job = incidents.transfer(conn, incident, body.technician, now, who.actor,
                                 {"reason": body.reason, "by": who.actor})
    except incidents.Refused as exc:
        raise HTTPException(409, f"{exc}: only a job not yet at the rack is reassigned "
                                 "(resume a paused incident first)") from None
    told = foresight.after_move(conn, incident, job, body.technician, plan, now)
    if told is not None:
        escalation.notify(conn, incident, told.notify, now, told.ref, once=told.once)


def router(deps: Deps) -> APIRouter:
    """Register the board's routes."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/foreseen-breaches", response_model=ForeseenPage)
    def foreseen_breaches(conn: db, who: who_dep) -> dict[str, Any]:
        """Open incidents whose live job was foreseen, at dispatch, to fix them late."""
        scope = sites_of(conn, who)
        rows = conn.cursor(row_factory=tuple_row).execute(
            _FORESEEN, {"step": foresight.STEP, "sites": scope}).fetchall()
        return {"items": [_foreseen(r) for r in rows], "next": None}

    @api.get("/api/v1/incidents/{incident_id}/candidates", response_model=CandidatePage)
    def candidates(incident_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """Who could take the job instead, each with the predicted verified fix."""
        t, now = _visible(conn, who, incident_id), datetime.now(UTC)
        with tuples(conn):
            plan = plans.site_plan(conn, t.site, now)
        names = _names(conn, t.site)
        ranked = [] if plan is None else foresight.ranked(plan.profiles, plan.layout, t, now,
                                                           plan.zone)
        return {"current": t.current, "next": None, "items": [
            {"technician": c.technician, "name": names.get(c.technician),
             "predicted_fix": views.ts(c.finish),
             "late_minutes": foresee.late_minutes(c.finish, t.job.deadline)} for c in ranked]}

    @api.post("/api/v1/incidents/{incident_id}/reassign", response_model=models.Incident)
    def reassign(incident_id: int, body: TransferIn, conn: db,
                 who: who_dep) -> dict[str, Any]:
        """A manager gives the job (not yet at the rack) to another technician."""
        sites_of(conn, who)  # the role first: no one else learns which incidents exist
        with conn.transaction(), tuples(conn):
            _transfer(conn, who, incident_id, body, datetime.now(UTC))
        row = conn.execute(f"SELECT {views.INCIDENT_COLUMNS} {views.INCIDENT_FROM}"
                           " WHERE i.id = %s", (incident_id,)).fetchone()
        return views.incident(row)

    return api
