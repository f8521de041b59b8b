"""The job card's own routes: a note and a photo on a job, the technician's request for a clock
pause, and the managers' list and refusal of those requests (a grant is the pause route).

Notes and pause requests answer the job (as the other job actions do), so the phone's queue
replaces its copy of the job with the answer. A photo needs the connection: its bytes are the
request's body (any Content-Type: the bytes are sniffed), cleaned by dispatcher/service/photos.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import device_time, policy, proactive
from dispatcher.http import idempotency, models
from dispatcher.http.deps import MAX_ID, Deps, DictConn
from dispatcher.http.routes.jobs import JOB_COLUMNS, JOB_FROM, Told
from dispatcher.service import photos
from dispatcher.store import LIVE_JOB_STATES, jobcard
from dispatcher.store.jobcard import CardRefused
from dispatcher.store.tokens import Principal
from schemas.states import Role


class NoteIn(BaseModel):
    """A note on the job: what was found, what was done."""

    text: str = Field(min_length=1, max_length=2000)


class JobPauseRequestIn(BaseModel):
    """Why the technician asks for the clock to stop: a cause the policy excludes."""

    reason: policy.PauseReason
    note: str | None = Field(default=None, max_length=1000)


class RefuseIn(BaseModel):
    """Why the manager will not pause the clock."""

    answer: str = Field(min_length=3, max_length=500)


def actor(conn: DictConn, who: Principal, card: dict[str, Any] | None, job_id: int,
          *, managers: bool = True) -> str:
    """Who acts on the job: its technician, or (when allowed) a manager of its site."""
    if who.role not in (Role.TECHNICIAN, Role.MANAGER):
        raise HTTPException(403, "the job card is for the technician the job is assigned to "
                                 "and the site's managers")
    if card is None:
        raise HTTPException(404, f"no job {job_id}; list yours at /api/v1/jobs?mine=true")
    if not proactive.can_act(who.role.value if managers else "technician", who.person,
                             card["technician_id"], jobcard.home_site(conn, who.person),
                             card["site_id"]):
        whose = " or a manager of its site" if managers else ""
        raise HTTPException(403, f"job {job_id} is {card['technician_id']}'s; only they{whose}"
                                 " act on it")
    return f"{who.role.value}:{who.person}"


def live(card: dict[str, Any], job_id: int) -> None:
    """Refuse a job that ended (done, declined, cancelled)."""
    if card["state"] not in LIVE_JOB_STATES:
        raise HTTPException(409, f"job {job_id} is '{card['state']}': notes, photos and pause "
                                 "requests go on a live job")


def job_view(conn: DictConn, deps: Deps, job_id: int) -> dict[str, Any]:
    """The job as the list shows it."""
    row = conn.execute(f"SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = %s", (job_id,)).fetchone()
    assert row is not None  # the caller holds the job
    return views.job(row, deps.serials)


def ask_pause(conn: DictConn, who: Principal, card: dict[str, Any] | None, job_id: int,
              reason: str, note: str | None, now: datetime) -> bool:
    """The assigned technician asks the site manager to pause; True when repeated."""
    if who.role is not Role.TECHNICIAN:
        raise HTTPException(403, "managers and the customer pause the clock directly: "
                                 "POST /api/v1/incidents/{id}/pause")
    actor(conn, who, card, job_id, managers=False)
    assert card is not None
    live(card, job_id)
    if card["incident_state"] not in policy.RUNNING:
        raise HTTPException(409, f"the incident is '{card['incident_state']}': only a running "
                                 "clock can be paused")
    try:
        return jobcard.request_pause(conn, card, who.person or "", reason, note, now)
    except CardRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None


def router(deps: Deps) -> APIRouter:
    """Register the job card routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    @api.post("/api/v1/jobs/{job_id}/notes", response_model=models.Job)
    def note(job_id: int, body: NoteIn, conn: db, who: who_dep,
             key: Key = None, told: Told = None) -> dict[str, Any]:
        """A note on the job's timeline (the technician, or a manager of the site); a note
        written offline carries the phone's time of it, recorded beside the arrival time."""
        def act(now: datetime) -> dict[str, Any]:
            card = jobcard.job(conn, job_id, lock=True)
            by = actor(conn, who, card, job_id)
            assert card is not None
            live(card, job_id)
            jobcard.add_note(conn, card["incident_id"], job_id, by, body.text, now,
                             device_time.parse(told, now, None).detail())
            return job_view(conn, deps, job_id)
        return idempotency.once_per_key(conn, who, key, {"job": job_id, "note": body.text}, act)

    @api.post("/api/v1/jobs/{job_id}/pause-request", response_model=models.Job)
    def pause_request(job_id: int, body: JobPauseRequestIn, conn: db, who: who_dep,
                      key: Key = None) -> dict[str, Any]:
        """The technician asks the site manager to pause the clock; it keeps running."""
        def act(now: datetime) -> dict[str, Any]:
            ask_pause(conn, who, jobcard.job(conn, job_id, lock=True), job_id,
                      body.reason.value, body.note, now)
            return job_view(conn, deps, job_id)
        return idempotency.once_per_key(conn, who, key, {"job": job_id, "pause": body.reason.value,
                                                         "note": body.note}, act)

    @api.post("/api/v1/jobs/{job_id}/photos", response_model=models.Photo, status_code=201,
              openapi_extra={"requestBody": {"required": True, "description": (
                  "the photo's bytes (JPEG, PNG, WebP or GIF; sniffed, whatever the "
                  f"Content-Type), at most {photos.MAX_UPLOAD // (1024 * 1024)} MB"),
                  "content": {"application/octet-stream": {
                      "schema": {"type": "string", "format": "binary"}}}}})
    async def photo(job_id: int, request: Request, who: who_dep,
                    key: Key = None) -> dict[str, Any]:
        """A photo of the work: metadata stripped, downscaled, on the job's timeline."""
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > photos.MAX_UPLOAD:
            raise HTTPException(413, f"the photo is {int(size) / 1e6:.1f} MB; the limit is "
                                     f"{photos.MAX_UPLOAD // (1024 * 1024)} MB: take it at a "
                                     "lower resolution or crop it")
        data = bytearray()
        async for chunk in request.stream():  # stop reading past the limit, whatever it said
            data += chunk
            if len(data) > photos.MAX_UPLOAD:
                break
        return await run_in_threadpool(_store_photo, deps, who, job_id, bytes(data), key)

    @api.get("/api/v1/photos/{photo_id}", include_in_schema=False)
    def photo_bytes(photo_id: int, conn: db, who: who_dep, thumb: bool = False) -> Response:
        """A photo's JPEG (not in the schema: the answer is an image, not JSON). Staff only:
        the job's technician, managers, admins; customers never (the cage, other racks)."""
        if who.role not in (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "photos of the work are for the technician and managers")
        row = jobcard.photo(conn, photo_id) if photo_id <= MAX_ID else None
        if row is None:
            raise HTTPException(404, f"no photo {photo_id}")
        if who.role is Role.TECHNICIAN and row["technician_id"] != who.person:
            raise HTTPException(403, f"photo {photo_id} belongs to another technician's job")
        return Response(bytes(row["thumb"] if thumb else row["image"]), media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store"})

    @api.get("/api/v1/photos", response_model=models.PhotoPage)
    def list_photos(conn: db, who: who_dep, incident: Annotated[int | None, Query(
            ge=1, le=MAX_ID)] = None, open_only: Annotated[bool, Query(alias="open")] = True
                    ) -> dict[str, Any]:
        """Photos of the work, oldest first: one incident's, or every open incident's
        (managers and admins: /ops shows them under their incidents)."""
        if who.role not in (Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "the photos list is for managers and admins")
        rows = jobcard.photos(conn, incident, open_only and incident is None)
        return {"items": [photo_view(r["id"], r["incident_id"], r["job_id"], r["author"],
                                     r["taken_at"], r["width"], r["height"], r["bytes"])
                          for r in rows], "next": None}

    @api.get("/api/v1/pause-requests", response_model=models.PauseRequestPage)
    def pause_requests(conn: db, who: who_dep, state: str | None = "pending",
                       site: str | None = None) -> dict[str, Any]:
        """Technicians' pause requests, oldest first (managers and admins)."""
        if who.role not in (Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "pause requests are for managers and admins")
        if state not in (None, "", "pending", "granted", "refused"):
            raise HTTPException(422, "state is one of pending, granted, refused (or empty for all)")
        return {"items": [_request_item(r) for r in jobcard.requests(conn, state or None, site)],
                "next": None}

    @api.post("/api/v1/pause-requests/{request_id}/refuse",
              response_model=models.PauseRequestItem)
    def refuse(request_id: int, body: RefuseIn, conn: db, who: who_dep) -> dict[str, Any]:
        """A manager of the site will not pause the clock; the technician sees why."""
        if who.role is not Role.MANAGER:
            raise HTTPException(403, "the site manager answers a pause request")
        with conn.transaction():
            try:
                jobcard.refuse(conn, request_id, f"manager:{who.person}",
                               jobcard.home_site(conn, who.person), body.answer,
                               datetime.now(UTC))
            except CardRefused as exc:
                raise HTTPException(exc.status, exc.detail) from None
        rows = [r for r in jobcard.requests(conn, None, None) if r["id"] == request_id]
        return _request_item(rows[0])

    return api


def _store_photo(deps: Deps, who: Principal, job_id: int, data: bytes,
                 key: str | None) -> dict[str, Any]:
    """Check who may, clean the photo, store it (in a worker thread: Pillow and the database)."""
    with deps.pool.connection() as conn:
        if who.role not in (Role.TECHNICIAN, Role.MANAGER):
            actor(conn, who, None, job_id)  # the 403, before any lookup
        card = jobcard.job(conn, job_id)
        by = actor(conn, who, card, job_id)
        assert card is not None
        live(card, job_id)
        try:
            clean = photos.clean(data)
        except photos.PhotoRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        now = datetime.now(UTC)
        with conn.transaction():
            photo_id = jobcard.add_photo(conn, card["incident_id"], job_id, by, clean.image,
                                         clean.thumb, (clean.width, clean.height),
                                         f"{who.token_id}:{key}" if key else None, now)
        return photo_view(photo_id, card["incident_id"], job_id, by, now, clean.width,
                          clean.height, len(clean.image))


def photo_view(photo_id: int, incident: int, job_id: int, author: str, at: datetime | None,
               width: int, height: int, size: int) -> dict[str, Any]:
    """The public shape of a photo."""
    url = f"/api/v1/photos/{photo_id}"
    return {"id": photo_id, "incident": incident, "job": job_id, "author": author,
            "taken_at": views.ts(at), "width": width, "height": height, "bytes": size,
            "url": url, "thumb_url": url + "?thumb=true"}


def _request_item(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "state": r["state"], "reason": r["reason"], "note": r["note"],
            "requested_at": views.ts(r["requested_at"]),
            "answered_at": views.ts(r["answered_at"]), "answered_by": r["answered_by"],
            "answer": r["answer"], "incident": r["incident_id"], "job": r["job_id"],
            "technician": r["technician_id"], "host": r["host_id"], "site": r["site_id"]}
