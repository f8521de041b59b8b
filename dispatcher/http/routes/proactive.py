"""HTTP routes of proactive jobs (planned work from predictions, no SLA clock).

`GET /api/v1/proactive-jobs` lists them for staff; the assigned technician or a manager of
the job's site acknowledges, marks done (the prediction is done, the spare consumed) or
dismisses a false alarm (the prediction is dismissed, the spare released). Each action is
idempotent by the Idempotency-Key header, through dispatcher/http/idempotency.py.

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import proactive
from dispatcher.domain.proactive import ProactiveState
from dispatcher.http import idempotency, models
from dispatcher.http.deps import Cursor, Deps, Limit
from dispatcher.service import proactive as service
from dispatcher.service.proactive import COLUMNS, FROM, LIVE_SQL
from dispatcher.store import spares
from dispatcher.store.tokens import Principal
from schemas.states import Role
from schemas.wake import wake


class DoneIn(BaseModel):
    """What was done; the new part's serial when a part went in."""

    serial: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\s]+$")
    note: str = Field(min_length=1, max_length=1000)


class DismissIn(BaseModel):
    """Why the prediction was a false alarm."""

    reason: str = Field(min_length=3, max_length=500)


def view(r: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a proactive job."""
    return {
        "id": r["id"], "state": r["state"], "site": r["site_id"],
        "technician": r["technician_id"], "technician_name": r["technician_name"],
        "planned_at": views.ts(r["planned_at"]), "acknowledged_at": views.ts(r["acknowledged_at"]),
        "finished_at": views.ts(r["finished_at"]), "finished_by": r["finished_by"],
        "spare_part": r["spare_part"], "part_note": r["part_note"],
        "new_serial": r["new_serial"], "note": r["note"],
        # the slot inside the customer's maintenance window, and the customer's answer
        "slot_start": views.ts(r["slot_start"]), "slot_end": views.ts(r["slot_end"]),
        "plan_state": r["plan_state"],
        "prediction": {
            "id": r["prediction_id"], "host": r["host_id"], "customer": r["customer_id"],
            "component": r["component"], "kind": r["kind"], "prediction": r["prediction"],
            "slot": r["slot"], "serial": r["serial"], "state": r["prediction_state"],
            "detected_at": views.ts(r["detected_at"]), "last_seen": views.ts(r["last_seen"]),
            "location": {"room": r["room"], "rack": r["rack"], "unit": r["unit"]}},
    }


def perform(conn: Any, who: Principal, job_id: int, action: proactive.Action,
            body: dict[str, Any], now: Any) -> dict[str, Any]:
    """Apply one action in the caller's transaction; raise HTTPException when it cannot."""
    row = conn.execute(f"SELECT {COLUMNS} {FROM} WHERE pj.id = %s FOR UPDATE OF pj",
                       (job_id,)).fetchone()
    if row is None:
        raise HTTPException(404, f"no proactive job {job_id}; list yours at "
                                 "/api/v1/proactive-jobs?mine=true")
    home = conn.execute("SELECT site_id FROM technicians WHERE id = %s",
                        (who.person,)).fetchone() if who.person else None
    if not proactive.can_act(who.role.value, who.person, row["technician_id"],
                             home["site_id"] if home else None, row["site_id"]):
        raise HTTPException(403, f"proactive job {job_id} is {row['technician_id']}'s; only they"
                                 f" or a manager of site {row['site_id']} act on it")
    state = ProactiveState(row["state"])
    target = proactive.transition(state, action)
    if target is None:
        raise HTTPException(409, f"proactive job {job_id} is '{state}'; '{action.name}' applies"
                                 f" to a job that is {' or '.join(sorted(action.sources))}")
    if target is state:
        return view(row)  # already done: a repeated tap changes nothing
    actor = f"{who.role.value}:{who.person}"
    if target is ProactiveState.ACKNOWLEDGED:
        conn.execute("UPDATE proactive_jobs SET state = 'acknowledged', acknowledged_at = %s"
                     " WHERE id = %s", (now, job_id))
    else:
        conn.execute("UPDATE proactive_jobs SET state = %s, finished_at = %s, finished_by = %s,"
                     " new_serial = %s, note = %s WHERE id = %s",
                     (target.value, now, actor, body.get("serial"),
                      body.get("note") or body.get("reason"), job_id))
        conn.execute("UPDATE predictions SET state = %s, closed_at = %s WHERE id = %s"
                     " AND state = 'open'", (target.value, now, row["prediction_id"]))
        spares.end_proactive(conn, job_id, target is ProactiveState.DONE, now)
    service.job_event(conn, job_id, now, actor, target.value,
                      {k: v for k, v in body.items() if v is not None})
    wake(conn, f"proactive:{job_id}")
    return view(conn.execute(f"SELECT {COLUMNS} {FROM} WHERE pj.id = %s", (job_id,)).fetchone())


def router(deps: Deps) -> APIRouter:
    """The routes, with the app's own connection and principal dependencies."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    def run(conn: Any, who: Principal, key: str | None, job_id: int, name: str,
            body: dict[str, Any]) -> dict[str, Any]:
        if who.role not in (Role.TECHNICIAN, Role.MANAGER):
            raise HTTPException(403, "proactive jobs are acted on by their technician or a"
                                     " site manager; use your own token")
        action = proactive.ACTIONS[name]
        return idempotency.once_per_key(conn, who, key,
                                 {"proactive_job": job_id, "action": name, **body},
                                 lambda now: perform(conn, who, job_id, action, body, now))

    @api.get("/api/v1/proactive-jobs", response_model=models.ProactivePage)
    def list_jobs(conn: db, who: who_dep, mine: bool = False,
                  state: ProactiveState | None = None,
                  limit: Limit = 50,
                  cursor: Cursor = None) -> dict[str, Any]:
        """Proactive jobs, oldest plan first; live ones unless a state is asked for. A
        technician sees their own; customers see them on /api/v1/predictions."""
        if who.role not in (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "proactive jobs are for staff; a customer sees planned"
                                     " work on its hosts at /api/v1/predictions")
        person = who.person if (mine or who.role is Role.TECHNICIAN) else None
        states = f"= '{state.value}'" if state else f"IN {LIVE_SQL}"  # from the enum only
        rows = conn.execute(
            f"SELECT {COLUMNS} {FROM} WHERE pj.state {states}"
            " AND (%(person)s::text IS NULL OR pj.technician_id = %(person)s)"
            " AND (%(cursor)s::bigint IS NULL OR pj.id > %(cursor)s)"
            " ORDER BY pj.id LIMIT %(limit)s",
            {"person": person, "cursor": cursor, "limit": limit + 1}).fetchall()
        items = [view(r) for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    @api.post("/api/v1/proactive-jobs/{job_id}/acknowledge", response_model=models.ProactiveJob)
    def acknowledge(job_id: int, conn: db, who: who_dep, key: Key = None) -> dict[str, Any]:
        """The technician has seen the planned work and will do it."""
        return run(conn, who, key, job_id, "acknowledge", {})

    @api.post("/api/v1/proactive-jobs/{job_id}/done", response_model=models.ProactiveJob)
    def done(job_id: int, body: DoneIn, conn: db, who: who_dep,
             key: Key = None) -> dict[str, Any]:
        """The work is done: the prediction is closed, a reserved spare consumed."""
        return run(conn, who, key, job_id, "done", body.model_dump(exclude_none=True))

    @api.post("/api/v1/proactive-jobs/{job_id}/dismiss", response_model=models.ProactiveJob)
    def dismiss(job_id: int, body: DismissIn, conn: db, who: who_dep,
                key: Key = None) -> dict[str, Any]:
        """A false alarm: the prediction is dismissed, a reserved spare released."""
        return run(conn, who, key, job_id, "dismiss", {"reason": body.reason})

    return api
