"""Proactive jobs adapter: plans open predictions onto technicians, settles, reminds, acts.

A proactive job is planned work, not a promise: no SLA clock, no credit, no escalation
timer; the only nudge is a daily reminder to its technician. The pass runs after the SLA
incidents' assignment, so failures always come first: a technician with a live SLA job is
never given planned work, and a planned job never holds the last spare of a part (see
dispatcher/domain/proactive.py). Predictions are claimed `FOR UPDATE SKIP LOCKED` and a
partial unique key allows one live job per prediction, so two dispatchers plan it once.
A planned (not acknowledged) job whose technician went off shift longer than a window, or
inactive, goes back to planning: the pass gives it to someone else with its spare.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from dispatcher.domain import proactive
from dispatcher.domain.proactive import ProactiveState
from dispatcher.fleet import SPARE_KINDS
from dispatcher.store import Conn, outbox, plans, spares, technicians, tz
from schemas.wake import wake

log = logging.getLogger(__name__)
BATCH = 100  # predictions planned per transaction; more wait for the next pass
LIVE_SQL = "('planned', 'acknowledged')"

COLUMNS = (
    "pj.id, pj.prediction_id, pj.site_id, pj.technician_id, t.name AS technician_name,"
    " pj.state, pj.spare_part, pj.part_note, pj.planned_at, pj.acknowledged_at,"
    " pj.finished_at, pj.finished_by, pj.new_serial, pj.note, p.host_id, p.customer_id,"
    " p.component, p.kind, p.prediction, p.slot, p.serial, p.detected_at, p.last_seen,"
    " p.state AS prediction_state, h.room, h.rack, h.unit, pj.slot_start, pj.slot_end,"
    " pj.plan_state")
FROM = (" FROM proactive_jobs pj JOIN predictions p ON p.id = pj.prediction_id"
        " JOIN hosts h ON h.id = p.host_id JOIN technicians t ON t.id = pj.technician_id")


def run(conn: Conn, now: datetime,
        off_shift_window: timedelta = proactive.OFF_SHIFT_WINDOW) -> int:
    """One pass: close jobs whose prediction closed, move jobs whose technician is gone,
    plan new ones, send due reminders."""
    settle(conn, now)
    replan(conn, now, off_shift_window)
    planned = plan(conn, now)
    remind(conn, now)
    return planned


def plan(conn: Conn, now: datetime) -> int:
    """Give each open prediction without a live job to a fitting technician; the number planned."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT p.id, p.site_id, p.kind, c.model, q.state, q.closed_at FROM predictions p"
            " LEFT JOIN components c ON c.host_id = p.host_id AND c.id = p.component"
            " LEFT JOIN LATERAL (SELECT o.state, o.closed_at FROM predictions o JOIN"
            " proactive_jobs oj ON oj.prediction_id = o.id AND oj.finished_by NOT LIKE"
            " 'telemetry%%' WHERE o.host_id = p.host_id AND o.component = p.component"
            " AND o.prediction = p.prediction AND o.id <> p.id AND o.closed_at IS NOT NULL"
            " ORDER BY o.closed_at DESC LIMIT 1) q ON TRUE WHERE p.state = 'open'"
            " AND (p.next_plan_at IS NULL OR p.next_plan_at <= %s) AND NOT EXISTS (SELECT 1"
            f" FROM proactive_jobs pj WHERE pj.prediction_id = p.id AND pj.state IN {LIVE_SQL})"
            " ORDER BY p.detected_at, p.id LIMIT %s FOR UPDATE OF p SKIP LOCKED",
            (now, BATCH)).fetchall()
        sites: dict[str, tuple[Any, Any, dict[str, int]]] = {}
        done = 0
        for pid, site, kind, model, closed_state, closed_at in rows:
            quiet = proactive.quiet_until(closed_state, closed_at)
            if quiet is not None and now < quiet:  # a person just closed the same part and slug
                conn.execute("UPDATE predictions SET next_plan_at = %s WHERE id = %s",
                             (quiet, pid))
                continue
            if site not in sites:
                sites[site] = _people(conn, site)
            techs, zone, load = sites[site]
            who = proactive.choose(kind, site, techs, load, now, zone)
            if who is None:
                conn.execute("UPDATE predictions SET next_plan_at = %s WHERE id = %s",
                             (now + proactive.RETRY, pid))
                continue
            load[who] = load.get(who, 0) + 1
            _create(conn, pid, site, kind, model, who, now)
            done += 1
    return done


def _people(conn: Conn, site: str) -> tuple[Any, Any, dict[str, int]]:
    """The site's technicians (open_jobs = live SLA jobs), its zone, live planned jobs each."""
    zone_row = conn.execute("SELECT timezone FROM sites WHERE id = %s", (site,)).fetchone()
    load = {str(r[0]): int(r[1]) for r in conn.execute(
        "SELECT technician_id, count(*) FROM proactive_jobs WHERE site_id = %s"
        f" AND state IN {LIVE_SQL} GROUP BY technician_id", (site,))}
    return technicians(conn, site), tz(zone_row[0] if zone_row else "UTC"), load


def _create(conn: Conn, prediction: int, site: str, kind: str, model: str | None, who: str,
            now: datetime) -> None:
    """Insert the job, hold a spare when one may be spared, tell the technician."""
    row = conn.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id,"
                       " planned_at) VALUES (%s, %s, %s, %s) RETURNING id",
                       (prediction, site, who, now)).fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING gave no row")
    job = int(row[0])
    part, why = (None, None)
    if kind in SPARE_KINDS:
        part, why = spares.reserve_proactive(conn, job, site, kind, model, now)
        conn.execute("UPDATE proactive_jobs SET spare_part = %s, part_note = %s WHERE id = %s",
                     (part, why, job))
    # The slot in the customer's windows, the timeline, and the customer and account team
    # told, all in this transaction: a crash before commit plans and tells nothing.
    slot = plans.contact(conn, job, now)
    when = f"; slot {slot.start.isoformat()} (customer's window)" if slot else ""
    outbox.enqueue(conn, recipient=who, reason="proactive_planned",
                   subject=f"Planned work (no clock): {kind} at {site}",
                   body=f"Proactive job {job} from prediction {prediction}"
                        f"{f'; spare {part} reserved' if part else ''}{f'; {why}' if why else ''}"
                        f"{when}.",
                   ref=f"proactive-{job}-planned", at=now)
    wake(conn, f"proactive:{job}")
    log.info("prediction %s planned as proactive job %s for %s%s", prediction, job, who,
             f" with spare {part}" if part else "")


def replan(conn: Conn, now: datetime,
           window: timedelta = proactive.OFF_SHIFT_WINDOW) -> int:
    """Give planned jobs whose technician is off shift past the window, or inactive, to a
    fitting colleague; the job (and so its spare reservation) stays the same row. A job
    nobody can take now stays where it is and is looked at again next pass."""
    n = 0
    with conn.transaction():
        rows = conn.execute(
            "SELECT pj.id, pj.site_id, pj.technician_id, p.kind, p.host_id FROM proactive_jobs"
            " pj JOIN predictions p ON p.id = pj.prediction_id WHERE pj.state = 'planned'"
            " ORDER BY pj.planned_at, pj.id LIMIT %s FOR UPDATE OF pj SKIP LOCKED",
            (BATCH * 10,)).fetchall()  # a cheap check per job; bounded per pass
        sites: dict[str, tuple[Any, Any, dict[str, int]]] = {}
        for job, site, old, kind, host in rows:
            if site not in sites:
                sites[site] = _people(conn, site)
            techs, zone, load = sites[site]
            current = next((t for t in techs if t.id == old), None)
            why = proactive.replan_reason(ProactiveState.PLANNED, site, current, now, zone,
                                          window)
            if why is None:
                continue
            who = proactive.choose(kind, site, [t for t in techs if t.id != old], load, now,
                                   zone)
            if who is None:
                continue
            load[old] = max(0, load.get(old, 0) - 1)
            load[who] = load.get(who, 0) + 1
            conn.execute("UPDATE proactive_jobs SET technician_id = %s WHERE id = %s",
                         (who, job))
            job_event(conn, job, now, "dispatcher", "replanned",
                      {"from": old, "to": who, "reason": why})
            outbox.enqueue(conn, recipient=who, reason="proactive_planned",
                           subject=f"Planned work (no clock): {kind} on {host}",
                           body=f"Proactive job {job} moved to you from {old}: {why}.",
                           ref=f"proactive-{job}-planned-{who}-{now.isoformat()}", at=now)
            wake(conn, f"proactive:{job}")
            log.info("proactive job %s moved from %s to %s: %s", job, old, who, why)
            n += 1
    return n


def settle(conn: Conn, now: datetime) -> int:
    """Close live jobs whose prediction the collector closed (the part was replaced)."""
    n = 0
    with conn.transaction():
        for job, state in conn.execute(
                "SELECT pj.id, p.state FROM proactive_jobs pj JOIN predictions p ON"
                f" p.id = pj.prediction_id WHERE pj.state IN {LIVE_SQL} AND p.state <> 'open'"
                " FOR UPDATE OF pj SKIP LOCKED").fetchall():
            target = ProactiveState.DONE if state == "done" else ProactiveState.DISMISSED
            conn.execute("UPDATE proactive_jobs SET state = %s, finished_at = %s,"
                         " finished_by = 'telemetry' WHERE id = %s", (target.value, now, job))
            job_event(conn, job, now, "telemetry", target.value,
                      {"reason": f"the prediction was closed ({state}) by the part's telemetry"})
            spares.end_proactive(conn, job, target is ProactiveState.DONE, now)
            wake(conn, f"proactive:{job}")
            n += 1
    return n


def remind(conn: Conn, now: datetime) -> int:
    """The daily reminder of each live job not yet done (the only escalation it gets)."""
    n = 0
    with conn.transaction():
        for job, who, planned_at, reminded_at, kind, host in conn.execute(
                "SELECT pj.id, pj.technician_id, pj.planned_at, pj.reminded_at, p.kind,"
                " p.host_id FROM proactive_jobs pj JOIN predictions p ON p.id = pj.prediction_id"
                f" WHERE pj.state IN {LIVE_SQL} AND coalesce(pj.reminded_at, pj.planned_at)"
                " <= %s FOR UPDATE OF pj SKIP LOCKED", (now - proactive.REMIND_EVERY,)
                ).fetchall():
            if not proactive.remind_due(planned_at, reminded_at, now):
                continue
            conn.execute("UPDATE proactive_jobs SET reminded_at = %s WHERE id = %s", (now, job))
            outbox.enqueue(conn, recipient=who, reason="proactive_reminder",
                           subject=f"Reminder: planned {kind} work on {host}",
                           body=f"Proactive job {job} is still open (no clock).",
                           ref=f"proactive-{job}-remind-{now.date().isoformat()}", at=now)
            n += 1
    return n


def job_event(conn: Conn, job: int, at: datetime, actor: str, kind: str,
              detail: dict[str, Any]) -> None:
    """Append one entry to a proactive job's timeline."""
    conn.execute("INSERT INTO proactive_job_events (proactive_job_id, at, actor, kind, detail)"
                 " VALUES (%s, %s, %s, %s, %s)", (job, at, actor, kind, Jsonb(detail)))


def spare_taken(conn: Conn, job: int, part: str, incident: int, now: datetime) -> None:
    """Record, in the dispatch's transaction, that a failure took this planned job's spare."""
    note = f"spare taken for failure incident {incident}; order one"
    row = conn.execute("UPDATE proactive_jobs SET spare_part = NULL, part_note = %s"
                       " WHERE id = %s RETURNING technician_id", (note, job)).fetchone()
    job_event(conn, job, now, "dispatcher", "spare_taken",
              {"incident": incident, "part": part, "note": note})
    if row is not None:
        outbox.enqueue(conn, recipient=str(row[0]), reason="proactive_spare_taken",
                       subject=f"Planned job {job}: its spare {part} went to a failure",
                       body=f"Proactive job {job}: {note}.",
                       ref=f"proactive-{job}-spare-taken-{incident}", at=now)
    wake(conn, f"proactive:{job}")
