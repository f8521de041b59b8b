"""Incidents: the list, one with its timeline, the customer's confirm and survey, and the
live stream the pages follow (server-sent events)."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from dispatcher import views
from dispatcher.domain.incident import Event
from dispatcher.http import models
from dispatcher.http.deps import Cursor, Deps, DictConn, Limit
from dispatcher.http.routes import jobs
from dispatcher.service import foresight
from dispatcher.service.engine import event
from dispatcher.store import incidents, jobcard, reviews
from dispatcher.store.tokens import Principal
from schemas.states import IncidentState, Role


def visible(conn: DictConn, who: Principal, incident_id: int) -> dict[str, Any]:
    """The incident row, or 404 when it does not exist or is not the caller's to see."""
    row = conn.execute(f"SELECT {views.INCIDENT_COLUMNS} {views.INCIDENT_FROM} WHERE i.id = %s",
                       (incident_id,)).fetchone()
    if row is None or (who.role is Role.CUSTOMER and row["customer_id"] != who.customer):
        raise HTTPException(404, f"no incident {incident_id} visible to this token")
    return row


def router(deps: Deps) -> APIRouter:
    """The incident routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/incidents", response_model=models.IncidentPage)
    def list_incidents(conn: db, who: who_dep, state: IncidentState | None = None,
                       site: str | None = None, customer: str | None = None,
                       limit: Limit = 50,
                       cursor: Cursor = None) -> dict[str, Any]:
        """Incidents, newest first; a customer sees only its own."""
        if who.role is Role.CUSTOMER:
            customer = who.customer
        where, args = ["TRUE"], []
        for col, val in (("i.state", state), ("i.site_id", site), ("i.customer_id", customer)):
            if val is not None:
                where.append(f"{col} = %s")
                args.append(str(val))
        if cursor:
            where.append("i.id < %s")
            args.append(str(cursor))
        rows = conn.execute(
            f"SELECT {views.INCIDENT_COLUMNS} {views.INCIDENT_FROM} WHERE {' AND '.join(where)}"
            f" ORDER BY i.id DESC LIMIT {limit + 1}", args).fetchall()
        more = len(rows) > limit
        items = [views.incident(r) for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if more else None}

    @api.get("/api/v1/incidents/{incident_id}", response_model=models.IncidentDetail)
    def get_incident(incident_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """One incident with its timeline, job and credit."""
        row = visible(conn, who, incident_id)
        out = views.incident(row)
        staff = who.role is not Role.CUSTOMER  # notes and photos are the staff's own
        out["timeline"] = [views.timeline_entry(r) for r in conn.execute(
            "SELECT at, actor, kind, detail FROM incident_events WHERE incident_id = %s"
            " ORDER BY at, id", (incident_id,))
            if staff or _customer_sees(r)]
        job = conn.execute(f"SELECT {jobs.JOB_COLUMNS} {jobs.JOB_FROM} WHERE j.incident_id = %s"
                           " ORDER BY j.id DESC LIMIT 1", (incident_id,)).fetchone()
        out["job"] = views.job(job) if job else None
        if out["job"]:
            out["job"].pop("incident")
            out["job"].pop("card")
        out["review"] = reviews.get(conn, incident_id)
        return out

    @api.post("/api/v1/incidents/{incident_id}/confirm", response_model=models.Incident)
    def confirm(incident_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer closes a verified incident."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "only the customer closes an incident")
        row = visible(conn, who, incident_id)
        if row["state"] == IncidentState.CLOSED:
            return views.incident(row)
        if row["state"] != IncidentState.VERIFIED:
            raise HTTPException(409, f"the incident is '{row['state']}': it can be closed once "
                                     "telemetry has verified the fix")
        now = datetime.now(UTC)
        with conn.transaction():
            incidents.close(conn, incident_id, now, now, f"customer:{who.customer}",
                            Event.CONFIRM, {})
        return views.incident(visible(conn, who, incident_id))

    @api.post("/api/v1/incidents/{incident_id}/survey", response_model=models.Survey)
    def survey(incident_id: int, body: jobs.SurveyIn, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer's 0-10 score after closing."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "only the customer answers the survey")
        row = visible(conn, who, incident_id)
        if row["state"] != IncidentState.CLOSED:
            raise HTTPException(409, "close the incident first (POST .../confirm)")
        now = datetime.now(UTC)
        with conn.transaction():
            done = conn.execute(
                "INSERT INTO surveys (incident_id, score, comment, at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (incident_id) DO NOTHING RETURNING incident_id",
                (incident_id, body.score, body.comment, now)).fetchone()
            if done is None:
                raise HTTPException(409, "this incident's survey was already answered")
            event(conn, incident_id, now, f"customer:{who.customer}", "survey",
                  {"score": body.score})
        return {"incident": incident_id, "score": body.score, "comment": body.comment}

    @api.get("/api/v1/stream", include_in_schema=False)
    async def stream(who: who_dep) -> StreamingResponse:
        """Server-sent events: 'change' whenever a visible incident's timeline grows."""

        def latest() -> str:
            """An opaque version of what this caller may see (ids would leak fleet volume)."""
            with deps.pool.connection() as conn:
                return _version(conn, who)

        async def events() -> AsyncIterator[str]:
            seen, idle = "", 0
            yield "retry: 3000\n\n"  # reconnect after 3 s on a bad connection
            while True:
                current = await asyncio.to_thread(latest)
                if current != seen:
                    seen, idle = current, 0
                    yield f"event: change\ndata: {json.dumps({'version': current})}\n\n"
                else:
                    idle += 1
                    if idle % 15 == 0:
                        yield ": keep-alive\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return api


def _version(conn: DictConn, who: Principal) -> str:
    args: list[Any] = []
    sql = ("SELECT coalesce(max(e.id), 0) AS m, count(*) AS n FROM incident_events e"
           " JOIN incidents i ON i.id = e.incident_id")
    if who.role is Role.CUSTOMER:
        sql += " WHERE i.customer_id = %s"
        args.append(who.customer)
    elif who.role is Role.TECHNICIAN:
        sql += (" WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.incident_id = i.id"
                " AND j.technician_id = %s)")
        args.append(who.person)
    row = conn.execute(sql, args).fetchone()
    # A rack going down, a host back, a rack resolved: the status page's banner.
    fac = conn.execute(
        "SELECT count(*) AS n, count(fh.back_at) AS b, count(f.resolved_at) AS r"
        " FROM facility_incident_hosts fh JOIN facility_incidents f"
        " ON f.id = fh.facility_id WHERE %(c)s::text IS NULL OR fh.customer_id = %(c)s",
        {"c": who.customer if who.role is Role.CUSTOMER else None}).fetchone()
    raw = f"{who.token_id}:{row['m']}:{row['n']}" if row else ""
    raw += f":{fac['n']}:{fac['b']}:{fac['r']}" if fac else ""
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _customer_sees(entry: Any) -> bool:
    """Whether a customer sees a timeline entry: not the staff's notes and photos, nor a
    foreseen breach (it names our other technicians and their queues: the site manager's
    to act on, and the customer is told the outcome by the clock and the credit)."""
    if entry["kind"] in jobcard.STAFF_ONLY_EVENTS:
        return False
    detail = entry["detail"] or {}
    return not (entry["kind"] == "escalated" and detail.get("step") == foresight.STEP)
