"""Clock pauses: only for causes the policy excludes, by a manager or the customer.

A pause records its reason, actor, start and end; on resume the deadline moves by exactly the
paused time and the dispatcher re-plans the incident's timers (its updated_at moved).
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from psycopg.rows import tuple_row
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import policy, sla
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.store import LIVE_JOB, Conn, incidents, jobcard
from dispatcher.store.tokens import Principal
from schemas.states import Role

REASONS = ", ".join(r.value for r in policy.PauseReason)


class PauseIn(BaseModel):
    """Why the clock stops: one of the causes the credit policy excludes."""

    reason: str = Field(max_length=100)


class PauseRefused(Exception):
    """A pause or resume that cannot happen: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _q(conn: Conn, sql: str, args: tuple[Any, ...]) -> Any:
    """Run a query returning tuples, whatever the connection's row factory (the API's: dicts)."""
    return conn.cursor(row_factory=tuple_row).execute(sql, args)


def _lock(conn: Conn, incident: int) -> tuple[str, datetime, float]:
    row = _q(conn, "SELECT state, detected_at, sla_minutes FROM incidents WHERE id = %s"
                       " FOR UPDATE", (incident,)).fetchone()
    if row is None:
        raise PauseRefused(404, f"no incident {incident}")
    return row[0], row[1], row[2]


def pause(conn: Conn, incident: int, actor: str, reason: str, now: datetime) -> int:
    """Stop the clock (in the caller's transaction); returns the pause id."""
    if reason not in set(policy.PauseReason):
        raise PauseRefused(422, f"reason {reason!r} is not one the policy excludes from the "
                                f"clock; use one of: {REASONS}")
    state, _, _ = _lock(conn, incident)
    if state == "paused":
        row = _q(conn, "SELECT id, reason FROM pauses WHERE incident_id = %s AND ended_at"
                           " IS NULL", (incident,)).fetchone()
        if row is not None and row[1] == reason:
            return int(row[0])  # a repeated request: already paused for that reason
        raise PauseRefused(409, "the incident is already paused for another reason; resume it "
                                "first")
    if state not in policy.RUNNING:
        raise PauseRefused(409, f"the incident is '{state}': only an open incident's clock can "
                                "be paused")
    row = _q(conn, "INSERT INTO pauses (incident_id, reason, started_at, started_by)"
                       " VALUES (%s, %s, %s, %s) RETURNING id", (incident, reason, now, actor)
                       ).fetchone()
    assert row is not None
    incidents.pause(conn, incident, now, actor, {"pause": row[0], "reason": reason})
    jobcard.grant(conn, incident, actor, now)  # a technician's waiting request is answered
    return int(row[0])


def resume(conn: Conn, incident: int, actor: str, now: datetime) -> datetime:
    """Restart the clock (in the caller's transaction); returns the shifted deadline."""
    state, detected, sla_minutes = _lock(conn, incident)
    if state != "paused":
        raise PauseRefused(409, f"the incident is '{state}', not paused")
    row = _q(conn, "UPDATE pauses SET ended_at = greatest(started_at, %s), ended_by = %s"
                       " WHERE incident_id = %s AND ended_at IS NULL"
                       " RETURNING id, ended_at - started_at", (now, actor, incident)).fetchone()
    pauses = [sla.Pause(r[0], r[1]) for r in _q(conn,
        "SELECT started_at, ended_at FROM pauses WHERE incident_id = %s", (incident,))]
    deadline = sla.deadline(detected, sla_minutes, pauses, now)
    job = _q(conn, f"SELECT state FROM jobs WHERE incident_id = %s AND state IN {LIVE_JOB}",
                       (incident,)).fetchone()
    incidents.resume(conn, incident, now, actor, deadline, job[0] if job else None,
                     {"pause": row[0] if row else None, "deadline": views.ts(deadline),
                      "paused_seconds": row[1].total_seconds() if row else 0})
    return deadline


def _actor(conn: Conn, who: Principal, incident: int) -> str:
    """Who may pause: the incident's customer or a manager; a technician only requests one."""
    if who.role is Role.TECHNICIAN:
        raise PauseRefused(403, "a technician can only request a pause: ask the site manager "
                                "or the customer to pause the clock")
    if who.role is Role.MANAGER:
        return f"manager:{who.person}"
    if who.role is Role.CUSTOMER:
        row = _q(conn, "SELECT customer_id FROM incidents WHERE id = %s",
                           (incident,)).fetchone()
        if row is None or row[0] != who.customer:
            raise PauseRefused(404, f"no incident {incident} visible to this token")
        return f"customer:{who.customer}"
    raise PauseRefused(403, "pauses are for the site manager or the customer")


def router(deps: Deps) -> APIRouter:
    """Register pause and resume."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def shown(conn: Any, incident: int) -> dict[str, Any]:
        row = conn.execute(f"SELECT {views.INCIDENT_COLUMNS} {views.INCIDENT_FROM}"
                           " WHERE i.id = %s", (incident,)).fetchone()
        return views.incident(row)

    @api.post("/api/v1/incidents/{incident_id}/pause", response_model=models.Incident)
    def pause_route(incident_id: int, body: PauseIn, conn: db, who: who_dep) -> dict[str, Any]:
        """Stop the clock for a cause the policy excludes (manager or customer)."""
        try:
            with conn.transaction():
                pause(conn, incident_id, _actor(conn, who, incident_id), body.reason,
                      datetime.now(UTC))
        except PauseRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return shown(conn, incident_id)

    @api.post("/api/v1/incidents/{incident_id}/resume", response_model=models.Incident)
    def resume_route(incident_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """Restart the clock; the deadline moves by exactly the paused time."""
        try:
            with conn.transaction():
                resume(conn, incident_id, _actor(conn, who, incident_id), datetime.now(UTC))
        except PauseRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return shown(conn, incident_id)

    return api
