"""HTTP routes on how an incident went and what the people on it ask for: breach reviews,
NPS per site, technician and customer, and a technician's request for a clock pause."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from psycopg.rows import dict_row, tuple_row
from pydantic import AwareDatetime, BaseModel, Field

from dispatcher import views
from dispatcher.domain import nps, policy
from dispatcher.domain import reviews as review_rules
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.http.routes import jobcard as jobcard_routes
from dispatcher.store import LIVE_JOB, Conn, jobcard, reviews
from dispatcher.store.reviews import ReviewRefused
from dispatcher.store.tokens import Principal
from schemas.states import Role

STAFF = (Role.MANAGER, Role.ADMIN)


class ItemIn(BaseModel):
    """One action item of a review."""

    text: str = Field(min_length=3, max_length=1000)
    owner: str = Field(min_length=1, max_length=100)
    due_at: AwareDatetime
    done_at: AwareDatetime | None = None


class ReviewIn(BaseModel):
    """What went wrong and what we do about it."""

    cause: str = Field(min_length=3, max_length=5000)
    items: list[ItemIn] = Field(max_length=reviews.MAX_ITEMS)


class ReviewPatch(BaseModel):
    """A new cause and/or the full new list of items (mark done by setting done_at)."""

    cause: str | None = Field(default=None, min_length=3, max_length=5000)
    items: list[ItemIn] | None = Field(default=None, max_length=reviews.MAX_ITEMS)


class PauseRequestIn(BaseModel):
    """Why the technician asks for the clock to stop: a cause the policy excludes."""

    reason: policy.PauseReason
    note: str | None = Field(default=None, max_length=1000)


class By(StrEnum):
    """How NPS figures are grouped."""

    SITE = "site"
    TECHNICIAN = "technician"
    CUSTOMER = "customer"


#: The incident column each grouping reads; the technician is the one assigned at the close.
BY_COLUMN = {By.SITE: "i.site_id", By.TECHNICIAN: "coalesce(i.assignee, '(none)')",
             By.CUSTOMER: "i.customer_id"}


def _author(who: Principal) -> str:
    """How a reviewer appears on the timeline."""
    if who.role is not Role.MANAGER and who.role is not Role.ADMIN:
        raise HTTPException(403, "breach reviews are written by managers")
    return f"{who.role.value}:{who.person}" if who.person else who.role.value


def _items(body: list[ItemIn]) -> list[reviews.Item]:
    return [reviews.Item(i.text, i.owner, i.due_at, i.done_at) for i in body]


def _figure(key: str | None, n: nps.Nps) -> dict[str, Any]:
    return {"key": key, "nps": n.score, "responses": n.responses, "promoters": n.promoters,
            "passives": n.passives, "detractors": n.detractors}


def router(deps: Deps) -> APIRouter:
    """Register breach reviews, NPS and the technician's pause request."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def write(conn: Conn, incident: int, step: Any) -> dict[str, Any]:
        try:
            with conn.transaction():
                step(datetime.now(UTC))
        except ReviewRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        got = reviews.get(conn, incident)
        assert got is not None  # just written
        return got

    @api.post("/api/v1/incidents/{incident_id}/review", status_code=201,
              response_model=models.Review)
    def create_review(incident_id: int, body: ReviewIn, conn: db,
                      who: who_dep) -> dict[str, Any]:
        """A manager writes the review of a breached incident; the customer sees it."""
        author = _author(who)
        return write(conn, incident_id, lambda now: reviews.create(
            conn, incident_id, body.cause, _items(body.items), author, now))

    @api.patch("/api/v1/incidents/{incident_id}/review", response_model=models.Review)
    def edit_review(incident_id: int, body: ReviewPatch, conn: db,
                    who: who_dep) -> dict[str, Any]:
        """A manager edits the cause or the items (an item is done when done_at is set)."""
        author = _author(who)
        items = None if body.items is None else _items(body.items)
        return write(conn, incident_id, lambda now: reviews.edit(
            conn, incident_id, body.cause, items, author, now))

    @api.get("/api/v1/reviews/overdue", response_model=models.OverduePage)
    def overdue_reviews(conn: db, who: who_dep) -> dict[str, Any]:
        """Breached incidents whose review is overdue (managers and admins; /ops counts them)."""
        if who.role not in STAFF:
            raise HTTPException(403, "overdue reviews are for managers and admins")
        return {"items": reviews.overdue(conn, datetime.now(UTC)),
                "due_days": review_rules.REVIEW_DUE.days, "next": None}

    @api.get("/api/v1/nps", response_model=models.NpsReport)
    def nps_figures(conn: db, who: who_dep, by: By | None = None,
                    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
                    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
                    ) -> dict[str, Any]:
        """NPS of closed incidents' surveys in [from, to); a customer sees only its own."""
        if who.role is Role.CUSTOMER:
            if by not in (None, By.CUSTOMER):
                raise HTTPException(403, "a customer sees only its own figure: use by=customer")
            by = By.CUSTOMER
        elif who.role not in STAFF:
            raise HTTPException(403, "NPS figures are for managers, admins and the customer")
        by = by or By.SITE
        if since and until and since >= until:
            raise HTTPException(422, "'from' must be before 'to'")
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        for sql, val in (("s.at >= %s", since), ("s.at < %s", until),
                         ("i.customer_id = %s",
                          who.customer if who.role is Role.CUSTOMER else None)):
            if val is not None:
                where.append(sql)
                args.append(val)
        rows = conn.cursor(row_factory=tuple_row).execute(
            f"SELECT {BY_COLUMN[by]}, s.score FROM surveys s JOIN incidents i ON"
            f" i.id = s.incident_id WHERE {' AND '.join(where)}", args).fetchall()
        answers = [(str(r[0]), int(r[1])) for r in rows]
        return {"by": by.value, "from": views.ts(since), "to": views.ts(until),
                "overall": _figure(None, nps.compute(s for _, s in answers)),
                "items": [_figure(k, v) for k, v in nps.by_group(answers).items()],
                "next": None}

    @api.post("/api/v1/incidents/{incident_id}/pause-request", status_code=202,
              response_model=models.PauseRequest)
    def pause_request(incident_id: int, body: PauseRequestIn, conn: db,
                      who: who_dep) -> dict[str, Any]:
        """The assigned technician asks the site manager to pause; the clock keeps running."""
        if who.role is not Role.TECHNICIAN:
            raise HTTPException(403, "managers and the customer pause the clock directly: "
                                     "POST .../pause")
        now = datetime.now(UTC)
        with conn.transaction():
            repeated = _request_pause(conn, incident_id, who.person or "", body, now)
        return {"incident": incident_id, "reason": body.reason.value, "note": body.note,
                "requested_at": views.ts(now), "repeated": repeated,
                "detail": "the site manager was asked; the clock runs until they or the "
                          "customer pause it"}

    return api


def _request_pause(conn: Conn, incident: int, tech: str, body: PauseRequestIn,
                   now: datetime) -> bool:
    """Record the request and tell the site manager; True when it repeats a pending one.

    The same request as the job card's POST /api/v1/jobs/{id}/pause-request, by the incident:
    the technician's live job on it is the one asked through (dispatcher/store/jobcard.py).
    """
    cur = conn.cursor(row_factory=dict_row)
    found = cur.execute("SELECT id FROM incidents WHERE id = %s", (incident,)).fetchone()
    if found is None:
        raise HTTPException(404, f"no incident {incident}")
    job = cur.execute(f"SELECT id FROM jobs WHERE incident_id = %s AND technician_id = %s"
                      f" AND state IN {LIVE_JOB}", (incident, tech)).fetchone()
    if job is None:
        raise HTTPException(403, "only the technician assigned to the incident's live job can "
                                 "request a pause")
    who = Principal(0, Role.TECHNICIAN, None, tech)
    return jobcard_routes.ask_pause(conn, who, jobcard.job(conn, int(job["id"]), lock=True),
                                    int(job["id"]), body.reason.value, body.note, now)
