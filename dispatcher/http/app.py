"""The HTTP API (v1), the web pages, health and metrics: the dispatcher's FastAPI app."""


import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dispatcher import views
from dispatcher.domain.incident import Event
from dispatcher.http.routes import jobs
from dispatcher.http.routes.claims import add_claim_routes
from dispatcher.http.routes.facility import router as facility_router
from dispatcher.http.routes.ingest import router as ingest_router
from dispatcher.http.routes.notifications import router as notifications_router
from dispatcher.http.routes.pauses import add_pause_routes
from dispatcher.http.routes.proactive import router as proactive_router
from dispatcher.http.routes.reviews import add_review_routes
from dispatcher.http.routes.spares import add_spares_routes
from dispatcher.service.engine import event
from dispatcher.store import LIVE_JOB, incidents, reviews
from dispatcher.store.tokens import Principal, lookup
from schemas.states import IncidentState, Role

DictConn = psycopg.Connection[dict[str, Any]]
PAGES = {"tech": "tech.html", "status": "status.html", "ops": "ops.html"}
MAX_PAGE = 200  # list pages are bounded so one request cannot read the whole table


def create_app(database_url: str, engine_alive: Any = None) -> FastAPI:
    """Build the app around one connection pool (opened on startup, closed on shutdown)."""
    # check: a connection the database dropped (a restart, a crash) is replaced when it is
    # taken, not handed to a request that then fails with a 500 (bench/chaos found one)
    pool: ConnectionPool[DictConn] = ConnectionPool(
        database_url, open=False, min_size=1, max_size=8,
        kwargs={"autocommit": True, "row_factory": dict_row},
        check=ConnectionPool.check_connection,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.open()
        yield
        pool.close()

    app = FastAPI(title="Hourglass", version="1", lifespan=lifespan,
                  description="Hardware fixed within one hour, or it's free.")

    def db() -> Iterator[DictConn]:
        with pool.connection() as conn:
            yield conn

    Db = Annotated[DictConn, Depends(db)]

    def principal(conn: Db, authorization: Annotated[str | None, Header()] = None,
                  access_token: Annotated[str | None, Query(include_in_schema=False)] = None,
                  ) -> Principal:
        token = access_token
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise HTTPException(401, "use 'Authorization: Bearer <token>'")
        if not token:
            raise HTTPException(401, "missing token: send 'Authorization: Bearer <token>'; "
                                     "`hourglass token create` makes one")
        who = lookup(conn, token.strip())
        if who is None:
            raise HTTPException(401, "unknown token: ask an admin for a new one")
        return who

    Who = Annotated[Principal, Depends(principal)]

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return JSONResponse({"detail": "the database is unavailable right now; try again in a "
                                       "few seconds"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "bad request: " + "; ".join(parts)}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(conn: Db) -> dict[str, str]:
        conn.execute("SELECT 1")
        if engine_alive is not None and not engine_alive():
            raise HTTPException(503, "the dispatcher loop has not run recently")
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    def metrics(conn: Db) -> PlainTextResponse:
        from dispatcher.metrics import render

        return PlainTextResponse(render(conn), media_type="text/plain; version=0.0.4")

    for path, file in PAGES.items():
        app.add_api_route(f"/{path}", _page(file), methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse('<p><a href="/status">Status</a> · <a href="/tech">Technician</a>'
                            ' · <a href="/ops">Operations</a> · <a href="/docs">API</a></p>')

    @app.get("/api/v1/incidents")
    def list_incidents(conn: Db, who: Who, state: IncidentState | None = None,
                       site: str | None = None, customer: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                       cursor: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
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

    @app.get("/api/v1/incidents/{incident_id}")
    def get_incident(incident_id: int, conn: Db, who: Who) -> dict[str, Any]:
        """One incident with its timeline, job and credit."""
        row = _visible_incident(conn, who, incident_id)
        out = views.incident(row)
        out["timeline"] = [views.timeline_entry(r) for r in conn.execute(
            "SELECT at, actor, kind, detail FROM incident_events WHERE incident_id = %s"
            " ORDER BY at, id", (incident_id,))]
        job = conn.execute(f"SELECT {jobs.JOB_COLUMNS} {jobs.JOB_FROM} WHERE j.incident_id = %s"
                           " ORDER BY j.id DESC LIMIT 1", (incident_id,)).fetchone()
        out["job"] = views.job(job) if job else None
        if out["job"]:
            out["job"].pop("incident")
        out["review"] = reviews.get(conn, incident_id)
        return out

    @app.get("/api/v1/jobs")
    def list_jobs(conn: Db, who: Who, mine: bool = False,
                  open_only: Annotated[bool, Query(alias="open")] = True) -> dict[str, Any]:
        """Jobs, soonest deadline first."""
        if who.role not in (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "jobs are for technicians and managers")
        where, args = ["TRUE"], []
        if mine or who.role is Role.TECHNICIAN:
            where.append("j.technician_id = %s")
            args.append(who.person or "")
        if open_only:
            where.append(f"j.state IN {LIVE_JOB}")
        rows = conn.execute(f"SELECT {jobs.JOB_COLUMNS} {jobs.JOB_FROM} WHERE "
                            f"{' AND '.join(where)} ORDER BY i.deadline LIMIT {MAX_PAGE}",
                            args).fetchall()
        return {"items": [views.job(r) for r in rows], "next": None}

    jobs.add_job_routes(app, Db, Who)
    add_pause_routes(app, Db, Who)
    add_claim_routes(app, Db, Who)
    add_review_routes(app, Db, Who)
    add_spares_routes(app, Db, Who)
    app.include_router(facility_router(Db, Who))
    app.include_router(ingest_router(Db, Who))
    app.include_router(notifications_router(Db, Who))
    app.include_router(proactive_router(Db, Who))

    @app.post("/api/v1/incidents/{incident_id}/confirm")
    def confirm(incident_id: int, conn: Db, who: Who) -> dict[str, Any]:
        """The customer closes a verified incident."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "only the customer closes an incident")
        row = _visible_incident(conn, who, incident_id)
        if row["state"] == IncidentState.CLOSED:
            return views.incident(row)
        if row["state"] != IncidentState.VERIFIED:
            raise HTTPException(409, f"the incident is '{row['state']}': it can be closed once "
                                     "telemetry has verified the fix")
        now = datetime.now(UTC)
        with conn.transaction():
            incidents.close(conn, incident_id, now, now, f"customer:{who.customer}",
                            Event.CONFIRM, {})
        return views.incident(_visible_incident(conn, who, incident_id))

    @app.post("/api/v1/incidents/{incident_id}/survey")
    def survey(incident_id: int, body: jobs.SurveyIn, conn: Db, who: Who) -> dict[str, Any]:
        """The customer's 0-10 score after closing."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "only the customer answers the survey")
        row = _visible_incident(conn, who, incident_id)
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

    @app.get("/api/v1/credits")
    def credits(conn: Db, who: Who,
                month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
                ) -> dict[str, Any]:
        """The credit ledger (a customer sees its own)."""
        if who.role not in (Role.ADMIN, Role.CUSTOMER):
            raise HTTPException(403, "the credit ledger is for admins and the customer")
        where, args = ["TRUE"], []
        if who.role is Role.CUSTOMER:
            where.append("customer_id = %s")
            args.append(who.customer or "")
        if month:
            where.append("to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM') = %s")
            args.append(month)
        # Hardware credits (one per incident) and facility credits (one per host of a rack
        # that went down), told apart by `source`; ids are unique within a source.
        rows = conn.execute(
            "SELECT * FROM (SELECT 'hardware' AS source, c.id, c.incident_id,"
            " NULL::bigint AS facility_id, i.host_id, c.customer_id, c.amount, c.currency,"
            " c.percent, c.periods, c.late_seconds, c.issued_at FROM credits c"
            " JOIN incidents i ON i.id = c.incident_id"
            " UNION ALL SELECT 'facility', id, NULL, facility_id, host_id, customer_id, amount,"
            " currency, percent, periods, late_seconds, issued_at FROM facility_credits) x"
            f" WHERE {' AND '.join(where)} ORDER BY issued_at, source DESC, id",
            args).fetchall()
        return {"items": [{"id": r["id"], "incident": r["incident_id"],
                           "customer": r["customer_id"], "amount": views.money(r["amount"]),
                           "currency": r["currency"], "percent": float(r["percent"]),
                           "periods": r["periods"], "late_seconds": r["late_seconds"],
                           "issued_at": views.ts(r["issued_at"]), "source": r["source"],
                           "facility_incident": r["facility_id"], "host": r["host_id"]}
                          for r in rows], "next": None}

    @app.get("/api/v1/stream", include_in_schema=False)
    async def stream(who: Who) -> StreamingResponse:
        """Server-sent events: 'change' whenever a visible incident's timeline grows."""

        def latest() -> str:
            """An opaque version of what this caller may see (ids would leak fleet volume)."""
            with pool.connection() as conn:
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

    return app


def _visible_incident(conn: DictConn, who: Principal, incident_id: int) -> dict[str, Any]:
    """The incident row, or 404 when it does not exist or is not the caller's to see."""
    row = conn.execute(f"SELECT {views.INCIDENT_COLUMNS} {views.INCIDENT_FROM} WHERE i.id = %s",
                       (incident_id,)).fetchone()
    if row is None or (who.role is Role.CUSTOMER and row["customer_id"] != who.customer):
        raise HTTPException(404, f"no incident {incident_id} visible to this token")
    return row


COMMON_JS_TAG = '<script src="/web/common.js"></script>'


def _page(file: str) -> Any:
    """Serve a page with web/common.js inlined: one request, even on a phone's weak signal."""
    web = resources.files("dispatcher").joinpath("web")
    common = web.joinpath("common.js").read_text(encoding="utf-8")
    html = web.joinpath(file).read_text(encoding="utf-8").replace(
        COMMON_JS_TAG, f"<script>\n{common}</script>")

    def serve() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return serve
