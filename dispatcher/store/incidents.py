"""The only code that changes an incident's or a job's state.

Every change asks dispatcher.domain.incident for the transition first (a transition not
in its table is refused with Refused), and writes the timeline entry and the wake-up of
the dispatchers and live pages in the caller's transaction, so a state never changes
without its entry. The collector opens incidents (state detected); from there on their
life is here.

Lock order of the whole dispatcher: the incident first, then its job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import tuple_row

from dispatcher.domain import incident as life
from dispatcher.domain import sla
from dispatcher.domain.incident import Event, Refused
from dispatcher.domain.verify import Observation
from dispatcher.store import Conn, event, wake
from schemas.states import IncidentState as S

__all__ = ["Refused", "close", "dispatch", "job_event", "observations", "pause", "pauses",
           "reassign", "reopen", "resume", "transfer", "verify"]

LIVE_JOB_SQL = life.sql_list(life.LIVE_JOB)


def _one(conn: Conn, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """One row as a tuple, whatever row factory the connection has (the API's are dicts)."""
    return conn.cursor(row_factory=tuple_row).execute(sql, params).fetchone()


def _move(conn: Conn, incident: int, ev: Event, now: datetime, *, job_state: str | None = None,
          sets: str = "", params: tuple[Any, ...] = ()) -> S:
    """Lock the incident, take the table's step, write it; returns the new state."""
    state = _state(conn, incident)
    if state is None:
        raise LookupError(f"no incident {incident}")
    to = life.step(state, ev, job_state)
    conn.execute(f"UPDATE incidents SET state = %s, updated_at = %s{sets} WHERE id = %s",
                 (to.value, now, *params, incident))
    return to


def _state(conn: Conn, incident: int) -> str | None:
    """The incident's state, locked for the rest of the transaction."""
    row = _one(conn, "SELECT state FROM incidents WHERE id = %s FOR UPDATE", (incident,))
    return None if row is None else str(row[0])


def dispatch(conn: Conn, incident: int, technician: str, now: datetime,
             detail: dict[str, Any]) -> int:
    """A job for ``technician``; the incident is dispatched to them. Returns the job id."""
    _move(conn, incident, Event.DISPATCH, now, sets=", assignee = %s", params=(technician,))
    row = _one(conn, "INSERT INTO jobs (incident_id, technician_id, dispatched_at)"
                     " VALUES (%s, %s, %s) RETURNING id", (incident, technician, now))
    event(conn, incident, now, "dispatcher", "dispatched", detail)
    return int(row[0]) if row else 0


def job_event(conn: Conn, incident: int, job: int, job_state: str, ev: Event, stamp: str,
              now: datetime, actor: str, detail: dict[str, Any],
              serial: str | None = None) -> str:
    """A technician's action on their job (acknowledge, arrive, replace, decline); the
    incident follows unless its clock is paused (a resume then takes the job's state).
    Returns the job's new state; Refused when the job is not in a state the action takes."""
    to = life.job_step(job_state, ev)
    if to is None:
        raise Refused(job_state, ev)
    state = _state(conn, incident)
    if state != S.PAUSED:
        sets = ", assignee = NULL, next_assign_at = NULL" if ev is Event.DECLINE else ""
        _move(conn, incident, ev, now, sets=sets)
    if stamp not in ("acknowledged_at", "on_site_at", "replaced_at", "finished_at"):
        raise ValueError(f"no job column {stamp!r}")
    conn.execute(f"UPDATE jobs SET state = %s, {stamp} = %s, new_serial = coalesce(%s,"
                 " new_serial) WHERE id = %s", (to.value, now, serial, job))
    event(conn, incident, now, actor, to.value, detail)
    wake(conn, f"incident:{incident}")
    return to.value


def reassign(conn: Conn, incident: int, job: int, technician: str, now: datetime,
             actor: str, detail: dict[str, Any]) -> int | None:
    """The unacknowledged job cancelled, the next technician dispatched; the new job's id."""
    _move(conn, incident, Event.REASSIGN, now, sets=", assignee = %s", params=(technician,))
    conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = %s WHERE id = %s"
                 " AND state = 'dispatched'", (now, job))
    row = _one(conn, "INSERT INTO jobs (incident_id, technician_id, dispatched_at)"
                     " VALUES (%s, %s, %s) RETURNING id", (incident, technician, now))
    new = int(row[0]) if row else None
    event(conn, incident, now, actor, "reassigned", {**detail, "job": new})
    wake(conn, f"incident:{incident}")
    return new


def transfer(conn: Conn, incident: int, technician: str, now: datetime, actor: str,
             detail: dict[str, Any]) -> int:
    """A manager moves the incident's live job (not yet at the rack) to another technician:
    the job cancelled, a new one dispatched; the new job's id. Refused from any other state."""
    state = _state(conn, incident)
    job = _one(conn, f"SELECT id, state, technician_id FROM jobs WHERE incident_id = %s"
                     f" AND state IN {LIVE_JOB_SQL} FOR UPDATE", (incident,))
    if state is None:
        raise LookupError(f"no incident {incident}")
    if job is None or life.job_step(str(job[1]), Event.TRANSFER) is None:
        raise Refused(state, Event.TRANSFER)
    _move(conn, incident, Event.TRANSFER, now, sets=", assignee = %s", params=(technician,))
    conn.execute("UPDATE jobs SET state = %s, finished_at = %s WHERE id = %s",
                 (life.JOB_TABLE[Event.TRANSFER][1].value, now, job[0]))
    row = _one(conn, "INSERT INTO jobs (incident_id, technician_id, dispatched_at)"
                     " VALUES (%s, %s, %s) RETURNING id", (incident, technician, now))
    new = int(row[0]) if row else 0
    event(conn, incident, now, actor, "reassigned",
          {**detail, "from": job[2], "to": technician, "job": new, "cancelled_job": job[0]})
    wake(conn, f"incident:{incident}")
    return new


def reopen(conn: Conn, incident: int, job: int, now: datetime, actor: str,
           detail: dict[str, Any]) -> None:
    """Replaced but not verified in time: the job and the incident back to on_site."""
    _move(conn, incident, Event.REOPEN, now)
    conn.execute("UPDATE jobs SET state = 'on_site' WHERE id = %s AND state = 'replaced'",
                 (job,))
    event(conn, incident, now, actor, "reopened", detail)
    wake(conn, f"incident:{incident}")


def verify(conn: Conn, incident: int, fixed: datetime, deadline: datetime, now: datetime,
           detail: dict[str, Any]) -> None:
    """Telemetry proved the fix at ``fixed``: verified, the live job done."""
    _move(conn, incident, Event.VERIFY, now, sets=", verified_at = %s, deadline = %s",
          params=(fixed, deadline))
    conn.execute(f"UPDATE jobs SET state = 'done', finished_at = %s WHERE incident_id = %s"
                 f" AND state IN {LIVE_JOB_SQL}", (now, incident))
    event(conn, incident, fixed, "telemetry", "verified", detail)
    wake(conn, f"incident:{incident}")


def pause(conn: Conn, incident: int, now: datetime, actor: str, detail: dict[str, Any]) -> None:
    """The clock stops (the pause row is the caller's)."""
    _move(conn, incident, Event.PAUSE, now)
    event(conn, incident, now, actor, "paused", detail)
    wake(conn, f"incident:{incident}")


def resume(conn: Conn, incident: int, now: datetime, actor: str, deadline: datetime,
           job_state: str | None, detail: dict[str, Any]) -> S:
    """The clock runs again with the shifted deadline; back to the live job's state."""
    to = _move(conn, incident, Event.RESUME, now, job_state=job_state,
               sets=", deadline = %s, next_assign_at = NULL", params=(deadline,))
    event(conn, incident, now, actor, "resumed", detail)
    wake(conn, f"incident:{incident}")
    return to


def close(conn: Conn, incident: int, at: datetime, now: datetime, actor: str, ev: Event,
          detail: dict[str, Any]) -> None:
    """Closed at ``at``: by the customer (CONFIRM) or after the quiet period (AUTO_CLOSE)."""
    if ev not in (Event.CONFIRM, Event.AUTO_CLOSE):
        raise ValueError(f"{ev} does not close an incident")
    _move(conn, incident, ev, now, sets=", closed_at = %s", params=(at,))
    event(conn, incident, at, actor, "closed", detail)
    wake(conn, f"incident:{incident}")


# -- what the promise is decided on (dispatcher.domain.promise) ---------------------------

def observations(conn: Conn, host: str) -> list[Observation]:
    """The latest status of every component of a host, as verification reads it."""
    return [Observation(*r) for r in conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, kind, slot, serial, status, status_ts FROM components WHERE host_id = %s",
        (host,))]


def pauses(conn: Conn, incident: int) -> list[sla.Pause]:
    """An incident's pauses (an open one has no end)."""
    return [sla.Pause(r[0], r[1]) for r in conn.cursor(row_factory=tuple_row).execute(
        "SELECT started_at, ended_at FROM pauses WHERE incident_id = %s", (incident,))]
