"""Cage access: where the contract says `cage_access: ask`, the customer grants or denies our
technician access to its cage for one incident, on /status.

The decision is recorded with who and when (dispatcher/store/cage.py, and a 'cage_access'
timeline entry); the technician's job answer and the managers' incident carry it as
`cage_access`. A denial stops the clock through the existing pause (reason
`customer_denied_access`, a cause the credit policy excludes) and tells the site manager
through the outbox; a grant after a denial restarts the clock (the deadline moves by the
paused time). Only the incident's own customer decides.

No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from psycopg.rows import tuple_row
from pydantic import BaseModel, ConfigDict

from dispatcher import views
from dispatcher.domain import incident, policy
from dispatcher.http import models
from dispatcher.http.deps import Deps, DictConn
from dispatcher.http.routes import pauses
from dispatcher.http.routes.incidents import visible
from dispatcher.store import cage, outbox, tokens
from dispatcher.store.tokens import Principal
from schemas.states import Role

DENIED = policy.PauseReason.CUSTOMER_DENIED_ACCESS.value


class CageIn(BaseModel):
    """The customer's answer: may our technician enter the cage for this incident."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["grant", "deny"]


def router(deps: Deps) -> APIRouter:
    """The cage access route."""
    return _routes(deps.db, deps.who)


def _paused_for(conn: DictConn, incident: int) -> str | None:
    """The reason of the incident's running pause, if any."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT reason FROM pauses WHERE incident_id = %s AND ended_at IS NULL",
        (incident,)).fetchone()
    return str(row[0]) if row else None


def _tell_manager(conn: DictConn, incident: int, actor: str, now: datetime) -> None:
    """The site manager hears of a denial at once (the staff notification path)."""
    manager, i = cage.site_manager(conn, incident)
    if not manager:
        return
    outbox.enqueue(
        conn, recipient=manager, reason="cage_access_denied",
        subject=f"[Hourglass] cage access denied: incident {incident}: {i['component']} on "
                f"{i['host']}",
        body=(f"The customer ({actor}) denied our technician access to the cage of "
              f"{i['host']} (room {i['room'] or '-'}, rack {i['rack'] or '-'}) at {i['site']}."
              " The clock is paused until they grant it; call them to agree a time.\n"
              f"Incident: {incident}"),
        ref=f"incident:{incident}:cage-denied:{now.timestamp():.6f}", at=now)


def decide(conn: DictConn, who: Principal, incident: int, decision: str,
           now: datetime) -> None:
    """Record the decision and move the clock with it (in the caller's transaction)."""
    rule = cage.rule_of(conn, incident)
    assert rule is not None  # noqa: S101 -- visible() found it
    if rule[0] != "ask":
        raise HTTPException(409, "your contract lets our technicians into your cage without "
                                 "asking: there is nothing to decide for this incident")
    email = tokens.session_email(conn, who.token_id)
    actor = who.actor + (f" ({email})" if email else "")  # who decided, as far as we know
    word = "granted" if decision == "grant" else "denied"
    if not cage.decide(conn, incident, word, actor, now):
        return  # the same answer again: nothing changes
    reason = _paused_for(conn, incident)
    try:
        if word == "denied" and reason is None:
            pauses.pause(conn, incident, actor, DENIED, now)
        elif word == "granted" and reason == DENIED:
            pauses.resume(conn, incident, actor, now)
    except pauses.PauseRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None
    if word == "denied":
        _tell_manager(conn, incident, actor, now)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.post("/api/v1/incidents/{incident_id}/cage-access", response_model=models.Incident)
    def cage_access(incident_id: int, body: CageIn, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer grants or denies our technician access to its cage (where the
        contract asks); a denial pauses the clock, a grant restarts it."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "only the customer's own people decide on cage access")
        row = visible(conn, who, incident_id)
        if row["state"] not in incident.OPEN:
            raise HTTPException(409, f"the incident is '{row['state']}': cage access is "
                                     "decided only while the part is being fixed")
        with conn.transaction():
            decide(conn, who, incident_id, body.decision, datetime.now(UTC))
        return views.incident(visible(conn, who, incident_id))

    return api
