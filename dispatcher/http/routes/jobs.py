"""Job actions of the assigned technician: acknowledge, decline, on-site, replaced.

Each is idempotent by the Idempotency-Key header: a retried tap on a bad connection
returns the first answer and changes nothing twice. The phone's own time of the tap rides
in Hourglass-Device-Time and is kept on the timeline entry beside the arrival time, as
information only (dispatcher.domain.device_time). An action the job has moved past while
it waited on the phone (reassigned, finished) is a 409 that says so in plain words.
"""


from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import device_time, serials
from dispatcher.domain.incident import JOB_TABLE, Event
from dispatcher.http import idempotency, models
from dispatcher.http.deps import MAX_PAGE, Deps
from dispatcher.store import LIVE_JOB, incidents, jobcard
from dispatcher.store.tokens import Principal
from schemas.states import JobState, Role

JOB_COLUMNS = (
    "j.id AS job_id, j.state AS job_state, j.technician_id, j.dispatched_at, j.acknowledged_at,"
    " j.on_site_at, j.replaced_at, j.new_serial, " + views.INCIDENT_COLUMNS + ","
    # the job card: the site's name, the spare held for the incident and where it stands,
    # the technician's latest pause request with the manager's answer
    " (SELECT name FROM sites WHERE id = i.site_id) AS site_name,"
    " (SELECT jsonb_build_object('part', r.part, 'location', p.location)"
    "  FROM spare_reservations r JOIN spares p ON p.site_id = r.site_id AND p.part = r.part"
    "  WHERE r.incident_id = i.id AND r.state <> 'released') AS spare,"
    " (SELECT to_jsonb(q) FROM (SELECT id, state, reason, note, requested_at, answered_at,"
    "  answered_by, answer FROM pause_requests WHERE job_id = j.id ORDER BY id DESC LIMIT 1) q"
    " ) AS pause_request"
)
JOB_FROM = " FROM jobs j JOIN incidents i ON i.id = j.incident_id" + views.INCIDENT_FROM[
    len(" FROM incidents i"):]


class DeclineIn(BaseModel):
    """Why the technician cannot take the job."""

    reason: str = Field(min_length=3, max_length=500)


class ReplacedIn(BaseModel):
    """The serial of the part the technician put in."""

    serial: str = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")


class SurveyIn(BaseModel):
    """The customer's score and comment."""

    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Action:
    """One job action: its event in the job's table (dispatcher.domain.incident)."""

    name: str
    event: Event
    stamp: str  # the job column that records when

    @property
    def sources(self) -> tuple[str, ...]:
        """The job states it applies to, in the states' own order."""
        return tuple(s.value for s in JobState if s in JOB_TABLE[self.event][0])

    @property
    def job_state(self) -> str:
        """The job state it leads to."""
        return JOB_TABLE[self.event][1].value


ACTIONS = {
    "acknowledge": Action("acknowledge", Event.ACKNOWLEDGE, "acknowledged_at"),
    "on-site": Action("on-site", Event.ARRIVE, "on_site_at"),
    "replaced": Action("replaced", Event.REPLACE, "replaced_at"),
    "decline": Action("decline", Event.DECLINE, "finished_at"),
}


def perform(conn: Any, who: Principal, job_id: int, action: Action,
            body: dict[str, Any], now: datetime,
            shapes: Mapping[str, serials.Shape] | None = None,
            device: str | None = None) -> dict[str, Any]:
    """Apply one action in the caller's transaction; raise HTTPException when it cannot.
    `device` is the Hourglass-Device-Time header as sent (recorded, never trusted)."""
    if who.role is not Role.TECHNICIAN:  # before any lookup: no one else learns which jobs exist
        raise HTTPException(403, "job actions are for the technician the job is assigned to")
    # Lock order of the whole dispatcher: the incident first, then its job (timers do the same).
    conn.execute("SELECT 1 FROM incidents WHERE id = (SELECT incident_id FROM jobs WHERE id = %s)"
                 " FOR UPDATE", (job_id,))
    row = conn.execute(f"SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = %s FOR UPDATE OF j",
                       (job_id,)).fetchone()
    if row is None:
        raise HTTPException(404, f"no job {job_id}")
    if who.role is not Role.TECHNICIAN or row["technician_id"] != who.person:
        raise HTTPException(403, f"job {job_id} is assigned to {row['technician_id']}, not you")
    if row["job_state"] == action.job_state:
        return views.job(row, shapes)  # already done: a repeated tap changes nothing
    if row["job_state"] not in action.sources:
        raise HTTPException(409, conflict(conn, row, action))
    told = device_time.parse(device, now, row["dispatched_at"])
    try:
        incidents.job_event(conn, row["id"], job_id, row["job_state"], action.event,
                            action.stamp, now, f"technician:{who.person}",
                            {"job": job_id, **body, **told.detail()}, serial=body.get("serial"))
    except incidents.Refused as exc:
        raise HTTPException(409, f"job {job_id}: {exc}") from None
    return views.job(conn.execute(f"SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = %s",
                                  (job_id,)).fetchone(), shapes)


def conflict(conn: Any, row: dict[str, Any], action: Action) -> str:
    """Why the job no longer takes the action, in the words the technician's phone shows
    (the tap may have waited offline while the job was given to someone else)."""
    job, state, verb = row["job_id"], row["job_state"], action.name.replace("-", " ")
    if state == "cancelled":
        then = conn.execute("SELECT coalesce(t.name, j.technician_id) AS name, j.dispatched_at"
                            " FROM jobs j LEFT JOIN technicians t ON t.id = j.technician_id"
                            " WHERE j.incident_id = %s AND j.id > %s ORDER BY j.id DESC LIMIT 1",
                            (row["id"], job)).fetchone()
        if then is not None:
            return (f"job {job} was given to {then['name']} at "
                    f"{then['dispatched_at'].astimezone(UTC):%H:%M} UTC while your {verb} "
                    "waited to be sent; it was not applied")
        return (f"job {job} was taken off you (the incident is now {row['state']}) while your "
                f"{verb} waited to be sent; it was not applied")
    if state == "done":
        return f"job {job} is finished (the fix was verified); your {verb} was not applied"
    if state == "declined":
        return f"you declined job {job} earlier; your {verb} was not applied"
    return (f"job {job} is already '{state}' (it moved on); '{action.name}' applies to a job "
            f"that is {' or '.join(action.sources)}, so your {verb} was not applied")


def run_idempotent(conn: Any, who: Principal, key: str | None, job_id: int, action: Action,
                   body: dict[str, Any],
                   shapes: Mapping[str, serials.Shape] | None = None,
                   device: str | None = None) -> dict[str, Any]:
    """Perform once per Idempotency-Key; a replay returns the stored answer. The device
    time is not part of the request the key stands for: a retry may resend it or not."""
    return idempotency.once_per_key(conn, who, key, {"job": job_id, "action": action.name, **body},
                        lambda now: perform(conn, who, job_id, action, body, now, shapes, device))


def check_serial(conn: Any, who: Principal, job_id: int, serial: str,
                 shapes: Mapping[str, serials.Shape]) -> None:
    """A 422 saying the expected shape when the new serial does not fit the part's kind, is
    the failed part's or is the reserved spare's part number (the assigned technician's own
    job only: anyone else gets perform's 403 or 404, and learns nothing from this)."""
    if who.role is not Role.TECHNICIAN:
        return
    card = jobcard.job(conn, job_id)
    if card is None or card["technician_id"] != who.person:
        return
    wrong = serials.problem(card["kind"], serial, old_serial=card["serial"],
                            spare_part=card["spare_part"], table=shapes)
    if wrong:
        raise HTTPException(422, wrong)


#: The Hourglass-Device-Time header of a job action or note (the job card's too). No
#: max_length: a bad device time is recorded as ignored, never refused (it is only
#: information, and the action itself must not fail over it).
Told = Annotated[str | None, Header(alias="Hourglass-Device-Time",
                                    description="the phone's RFC 3339 time of the tap; "
                                                "recorded on the timeline, never trusted")]


def router(deps: Deps) -> APIRouter:
    """Register the four job action routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    @api.get("/api/v1/jobs", response_model=models.JobPage)
    def list_jobs(conn: db, who: who_dep, mine: bool = False,
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
        rows = conn.execute(f"SELECT {JOB_COLUMNS} {JOB_FROM} WHERE "
                            f"{' AND '.join(where)} ORDER BY i.deadline LIMIT {MAX_PAGE}",
                            args).fetchall()
        return {"items": [views.job(r, deps.serials) for r in rows], "next": None}

    @api.post("/api/v1/jobs/{job_id}/acknowledge", response_model=models.Job)
    def acknowledge(job_id: int, conn: db, who: who_dep, key: Key = None,
                    told: Told = None) -> dict[str, Any]:
        """The technician has seen the job and takes it."""
        return run_idempotent(conn, who, key, job_id, ACTIONS["acknowledge"], {}, deps.serials,
                              told)

    @api.post("/api/v1/jobs/{job_id}/decline", response_model=models.Job)
    def decline(job_id: int, body: DeclineIn, conn: db, who: who_dep,
                key: Key = None, told: Told = None) -> dict[str, Any]:
        """The technician cannot take it; this counts as the job's one transfer."""
        return run_idempotent(conn, who, key, job_id, ACTIONS["decline"],
                              {"reason": body.reason}, deps.serials, told)

    @api.post("/api/v1/jobs/{job_id}/on-site", response_model=models.Job)
    def on_site(job_id: int, conn: db, who: who_dep, key: Key = None,
                told: Told = None) -> dict[str, Any]:
        """The technician is at the rack."""
        return run_idempotent(conn, who, key, job_id, ACTIONS["on-site"], {}, deps.serials,
                              told)

    @api.post("/api/v1/jobs/{job_id}/replaced", response_model=models.Job)
    def replaced(job_id: int, body: ReplacedIn, conn: db, who: who_dep,
                 key: Key = None, told: Told = None) -> dict[str, Any]:
        """The part is swapped; telemetry still has to verify it before the clock stops."""
        check_serial(conn, who, job_id, body.serial, deps.serials)
        return run_idempotent(conn, who, key, job_id, ACTIONS["replaced"],
                              {"serial": body.serial}, deps.serials, told)

    return api
