"""A manager's answer to an escalation, from /ops or a push notification's buttons.

`POST /api/v1/incidents/{id}/escalation/acknowledge` is "I have it": a timeline entry that
names the manager. `.../escalation/decline` is "not me": a timeline entry, and the
escalation goes on to the next step of the chain at once (a manager's to the executive on
duty; an executive's is the last step). Both answer the incident's latest escalation, are
idempotent by Idempotency-Key like the job actions, and a repeat by the same person changes
nothing. Managers only (the role executives sign in with too).
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path
from psycopg.rows import dict_row, tuple_row
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.http import idempotency, models
from dispatcher.http.deps import MAX_ID, Deps
from dispatcher.service import escalation
from dispatcher.store.tokens import Principal
from schemas.states import Role

FINISHED = ("verified", "closed")  # the fix is proven: no one need be sent any more
KINDS = {"acknowledge": "escalation_acknowledged", "decline": "escalation_declined"}


class DeclineIn(BaseModel):
    """Why not (optional: a notification's button sends a fixed sentence)."""

    reason: str | None = Field(default=None, max_length=500)


def answer(conn: Any, who: Principal, incident: int, action: str, now: datetime,
           reason: str | None = None) -> dict[str, Any]:
    """Record the manager's answer in the caller's transaction; HTTPException when refused."""
    if who.role is not Role.MANAGER or not who.person:  # before any lookup: nothing leaks
        raise HTTPException(403, "escalations are answered by a manager: sign in as the "
                                 "site manager or executive the escalation went to")
    person = who.person
    conn.row_factory = tuple_row  # the escalation service reads rows by position
    try:
        state = conn.execute("SELECT state FROM incidents WHERE id = %s FOR UPDATE",
                             (incident,)).fetchone()
        if state is None:
            raise HTTPException(404, f"no incident {incident}")
        found = escalation.latest(conn, incident)
        if found is None:
            raise HTTPException(409, f"incident {incident} has not been escalated; there is "
                                     "nothing to acknowledge or decline")
        eid, detail = found
        before = escalation.answered(conn, incident, eid, KINDS[action], who.actor)
        if before is not None:  # a repeated tap: the first answer stands
            return _shown(incident, eid, action, person, before["at"], before.get("next"))
        if action == "acknowledge":
            escalation.take(conn, incident, eid, person, who.actor, now)
            return _shown(incident, eid, action, person, now, None)
        if detail.get("to") not in (None, person):
            raise HTTPException(409, f"the escalation of incident {incident} went to "
                                     f"{detail.get('to')}, not you: only they can pass it on; "
                                     "acknowledge it instead if you take it")
        if state[0] in FINISHED:
            raise HTTPException(409, f"incident {incident} is '{state[0]}': the fix is "
                                     "proven, there is no one to pass the escalation to")
        nxt = escalation.pass_on(conn, incident, eid, detail, person, who.actor, now, reason)
        return _shown(incident, eid, action, person, now, nxt)
    finally:
        conn.row_factory = dict_row


def _shown(incident: int, eid: int, action: str, person: str, at: datetime,
           nxt: str | None) -> dict[str, Any]:
    return {"incident": incident, "escalation": eid, "action": action, "by": person,
            "at": views.ts(at), "next": nxt}


def router(deps: Deps) -> APIRouter:
    """The two escalation answers."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
    Id = Annotated[int, Path(ge=1, le=MAX_ID)]

    def run(conn: Any, who: Principal, key: str | None, incident: int, action: str,
            reason: str | None = None) -> dict[str, Any]:
        return idempotency.once_per_key(
            conn, who, key, {"incident": incident, "escalation": action, "reason": reason},
            lambda now: answer(conn, who, incident, action, now, reason))

    @api.post("/api/v1/incidents/{incident_id}/escalation/acknowledge",
              response_model=models.EscalationAnswer)
    def acknowledge(incident_id: Id, conn: db, who: who_dep,
                    key: Key = None) -> dict[str, Any]:
        """"I have it": the manager takes the incident's escalation."""
        return run(conn, who, key, incident_id, "acknowledge")

    @api.post("/api/v1/incidents/{incident_id}/escalation/decline",
              response_model=models.EscalationAnswer)
    def decline(incident_id: Id, conn: db, who: who_dep, key: Key = None,
                body: DeclineIn | None = None) -> dict[str, Any]:
        """"Not me": the escalation goes on to the next step of the chain now."""
        return run(conn, who, key, incident_id, "decline", body.reason if body else None)

    return api
