"""The job card's tables: photos of the work (`job_photos`) and the technician's requests for
a clock pause (`pause_requests`), with their timeline entries; notes live on the timeline
alone. The clock itself is paused only by dispatcher/http/routes/pauses.py (a manager's or the
customer's decision), which marks the waiting request granted through `grant`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from dispatcher.store import OPEN_SQL, Conn, event, outbox, wake

#: Timeline entries for staff only: a customer's timeline leaves them out (a work note may
#: name other customers' racks; a photo of the cage may show other customers' servers; a
#: manager's refusal of a pause is between staff). The request itself the customer sees.
STAFF_ONLY_EVENTS = frozenset({"note", "photo", "pause_request_refused"})


class CardRefused(Exception):
    """A job card action that cannot happen: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def job(conn: Conn, job_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """The job with what the card checks: its incident, technician, site, part kind, the
    failed part's serial and the reserved spare's part number (locked: incident, then job)."""
    cur = conn.cursor(row_factory=dict_row)
    if lock:  # the dispatcher's lock order: the incident first, then its job
        cur.execute("SELECT 1 FROM incidents WHERE id = (SELECT incident_id FROM jobs"
                    " WHERE id = %s) FOR UPDATE", (job_id,))
    row: dict[str, Any] | None = cur.execute(
        "SELECT j.id, j.incident_id, j.technician_id, j.state, i.site_id, i.kind, i.serial,"
        " i.state AS incident_state, i.host_id, i.component, s.manager_id,"
        " (SELECT r.part FROM spare_reservations r WHERE r.incident_id = i.id"
        "  AND r.state <> 'released') AS spare_part"
        " FROM jobs j JOIN incidents i ON i.id = j.incident_id JOIN sites s ON s.id = i.site_id"
        " WHERE j.id = %s" + (" FOR UPDATE OF j" if lock else ""), (job_id,)).fetchone()
    return row


def home_site(conn: Conn, person: str | None) -> str | None:
    """The site a technician or manager belongs to."""
    if not person:
        return None
    row = conn.execute("SELECT site_id FROM technicians WHERE id = %s", (person,)).fetchone()
    if row is None:
        return None
    return str(row["site_id"] if isinstance(row, dict) else row[0])


def add_note(conn: Conn, incident: int, job_id: int, actor: str, text: str,
             now: datetime, device: dict[str, str] | None = None) -> None:
    """A note on the incident's timeline (in the caller's transaction); `device` is the
    phone's time of it as dispatcher.domain.device_time recorded it."""
    event(conn, incident, now, actor, "note", {"job": job_id, "text": text, **(device or {})})
    wake(conn, f"incident:{incident}")


def add_photo(conn: Conn, incident: int, job_id: int, actor: str, image: bytes, thumb: bytes,
              size: tuple[int, int], key: str | None, now: datetime) -> int:
    """Store a cleaned photo and its timeline entry; a retried upload (same key) stores none."""
    if key:
        old = conn.execute("SELECT id FROM job_photos WHERE job_id = %s AND idempotency_key = %s",
                           (job_id, key)).fetchone()
        if old is not None:
            return int(old["id"] if isinstance(old, dict) else old[0])
    row = conn.execute(
        "INSERT INTO job_photos (incident_id, job_id, author, taken_at, width, height, image,"
        " thumb, idempotency_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (incident, job_id, actor, now, size[0], size[1], image, thumb, key)).fetchone()
    assert row is not None
    photo = int(row["id"] if isinstance(row, dict) else row[0])
    event(conn, incident, now, actor, "photo", {"job": job_id, "photo": photo,
                                                "width": size[0], "height": size[1],
                                                "bytes": len(image)})
    wake(conn, f"incident:{incident}")
    return photo


def photo(conn: Conn, photo_id: int) -> dict[str, Any] | None:
    """A photo's row with its job's technician and the incident's site."""
    row: dict[str, Any] | None = conn.cursor(row_factory=dict_row).execute(
        "SELECT p.id, p.incident_id, p.job_id, p.author, p.taken_at, p.width, p.height,"
        " p.image, p.thumb, j.technician_id, i.site_id FROM job_photos p"
        " JOIN jobs j ON j.id = p.job_id JOIN incidents i ON i.id = p.incident_id"
        " WHERE p.id = %s", (photo_id,)).fetchone()
    return row


def photos(conn: Conn, incident: int | None, open_only: bool) -> list[dict[str, Any]]:
    """Photos (without their bytes), oldest first: one incident's, or those of open incidents."""
    return list(conn.cursor(row_factory=dict_row).execute(
        "SELECT p.id, p.incident_id, p.job_id, p.author, p.taken_at, p.width, p.height,"
        " octet_length(p.image) AS bytes FROM job_photos p JOIN incidents i"
        " ON i.id = p.incident_id WHERE (%(i)s::bigint IS NULL OR p.incident_id = %(i)s)"
        f" AND (NOT %(open)s OR i.state IN {OPEN_SQL}) ORDER BY p.id LIMIT 200",
        {"i": incident, "open": open_only}))


# -- pause requests ------------------------------------------------------------------------

def request_pause(conn: Conn, card: dict[str, Any], tech: str, reason: str, note: str | None,
                  now: datetime) -> bool:
    """Record the request, tell the site manager; True when it repeats the waiting one.

    `card` is `job()`'s row, locked. One request waits per incident (a unique index): the same
    reason again is the same request (a repeated tap), another reason waits for the answer.
    """
    incident = int(card["incident_id"])
    waiting = conn.cursor(row_factory=dict_row).execute(
        "SELECT id, reason FROM pause_requests WHERE incident_id = %s AND state = 'pending'",
        (incident,)).fetchone()
    if waiting is not None:
        if waiting["reason"] == reason:
            return True
        raise CardRefused(409, f"a pause request ({waiting['reason']}) already waits for the "
                               "site manager's answer; ask them, or wait for it")
    manager = card["manager_id"]
    made = conn.cursor(row_factory=dict_row).execute(
        "INSERT INTO pause_requests (incident_id, job_id, technician_id, reason, note,"
        " requested_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (incident, card["id"], tech, reason, note, now)).fetchone()
    assert made is not None
    event(conn, incident, now, f"technician:{tech}", "pause_requested",
          {"reason": reason, "note": note, "to": manager})
    wake(conn, f"incident:{incident}")
    if manager:
        outbox.enqueue(
            conn, recipient=manager, reason="pause_requested",
            subject=f"Pause requested on incident #{incident} ({card['host_id']})",
            body=(f"Technician {tech} asks to pause the clock of incident #{incident} "
                  f"({card['host_id']}, {card['component']}): {reason}.\n"
                  f"Note: {note or '-'}\nThe clock keeps running until you or the customer "
                  f"pause it: POST /api/v1/incidents/{incident}/pause (or refuse it: "
                  f"POST /api/v1/pause-requests/{made['id']}/refuse).\n"),
            ref=f"pause-request:{incident}:{now.isoformat()}", at=now)
    return False


def grant(conn: Conn, incident: int, actor: str, now: datetime) -> int | None:
    """The clock was paused: the waiting request, if any, is granted; its id."""
    row = conn.execute("UPDATE pause_requests SET state = 'granted', answered_at = %s,"
                       " answered_by = %s WHERE incident_id = %s AND state = 'pending'"
                       " RETURNING id", (now, actor, incident)).fetchone()
    if row is None:
        return None
    return int(row["id"] if isinstance(row, dict) else row[0])


def refuse(conn: Conn, request: int, actor: str, manager_site: str | None, answer: str,
           now: datetime) -> dict[str, Any]:
    """A manager of the incident's site says no, with why; the technician sees it."""
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute(
        "SELECT q.id, q.incident_id, q.state, q.technician_id, i.site_id FROM pause_requests q"
        " JOIN incidents i ON i.id = q.incident_id WHERE q.id = %s FOR UPDATE OF q",
        (request,)).fetchone()
    if row is None:
        raise CardRefused(404, f"no pause request {request}; list them at "
                               "/api/v1/pause-requests")
    if manager_site is not None and row["site_id"] != manager_site:
        raise CardRefused(403, f"pause request {request} is at site {row['site_id']}: its "
                               "site manager answers it")
    if row["state"] == "refused":
        return dict(row)  # a repeated tap
    if row["state"] != "pending":
        raise CardRefused(409, f"pause request {request} was already {row['state']}")
    cur.execute("UPDATE pause_requests SET state = 'refused', answered_at = %s, answered_by = %s,"
                " answer = %s WHERE id = %s", (now, actor, answer, request))
    incident = int(row["incident_id"])
    event(conn, incident, now, actor, "pause_request_refused",
          {"request": request, "answer": answer})
    wake(conn, f"incident:{incident}")
    outbox.enqueue(conn, recipient=row["technician_id"], reason="pause_request_refused",
                   subject=f"No pause on incident #{incident}",
                   body=f"The site manager will not pause the clock: {answer}\n",
                   ref=f"pause-refused:{request}", at=now)
    return dict(row)


def requests(conn: Conn, state: str | None, site: str | None) -> list[dict[str, Any]]:
    """Pause requests, oldest first, by state and site."""
    return list(conn.cursor(row_factory=dict_row).execute(
        "SELECT q.*, i.host_id, i.site_id FROM pause_requests q"
        " JOIN incidents i ON i.id = q.incident_id"
        " WHERE (%(state)s::text IS NULL OR q.state = %(state)s)"
        " AND (%(site)s::text IS NULL OR i.site_id = %(site)s)"
        " ORDER BY q.requested_at, q.id LIMIT 200", {"state": state, "site": site}))
