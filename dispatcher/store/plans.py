"""Proactive plans with the customer: maintenance windows, the slot, answers, the timeline.

Owns the `maintenance_windows` table's edits from /status and the plan columns of
`proactive_jobs` (slot_start, slot_end, plan_state): the slot is decided by
dispatcher/domain/windows.py, every step is a `proactive_job_events` entry, and its messages
are queued in the same transaction (dispatcher/store/tell.py), once each by their ref.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher import views
from dispatcher.domain import care, windows
from dispatcher.domain.windows import PlanState, Slot, Window
from dispatcher.store import Conn, spares, tell
from schemas.wake import wake

LIVE = ("planned", "acknowledged")


class PlanRefused(Exception):
    """A plan step that cannot happen: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def q(conn: Conn, sql: str, args: Any = ()) -> Any:
    """A cursor of dict rows, whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row).execute(sql, args)


def windows_of(conn: Conn, customer: str) -> tuple[Window, ...]:
    """The customer's maintenance windows (none: an empty tuple)."""
    row = q(conn, "SELECT windows FROM maintenance_windows WHERE customer_id = %s",
            (customer,)).fetchone()
    return windows.parse_windows(row["windows"]) if row else ()


def save_windows(conn: Conn, customer: str, ws: tuple[Window, ...], actor: str,
                 now: datetime) -> None:
    """The customer's own windows (from /status); the fleet file's last value is kept."""
    q(conn, "INSERT INTO maintenance_windows (customer_id, windows, updated_at, updated_by)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET"
            " windows = EXCLUDED.windows, updated_at = EXCLUDED.updated_at,"
            " updated_by = EXCLUDED.updated_by",
      (customer, Jsonb([w.as_json() for w in ws]), now, actor))


def job_event(conn: Conn, job: int, at: datetime, actor: str, kind: str,
              detail: dict[str, Any]) -> int:
    """Append one entry to a proactive job's timeline; its id."""
    row = q(conn, "INSERT INTO proactive_job_events (proactive_job_id, at, actor, kind, detail)"
                  " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (job, at, actor, kind, Jsonb(detail))).fetchone()
    return int(row["id"])


_JOB = ("SELECT pj.id, pj.state, pj.site_id, pj.technician_id, pj.spare_part, pj.part_note,"
        " pj.slot_start, pj.slot_end, pj.plan_state, pj.prediction_id, p.host_id, p.customer_id,"
        " p.component, p.kind, p.prediction, p.detected_at, p.last_seen, p.evidence,"
        " p.last_evidence, k.account_manager, s.manager_id AS site_manager"
        " FROM proactive_jobs pj JOIN predictions p ON p.id = pj.prediction_id"
        " JOIN customers k ON k.id = p.customer_id JOIN sites s ON s.id = pj.site_id"
        " WHERE pj.id = %s")


def prediction_of(r: dict[str, Any]) -> care.Prediction:
    """A job row's prediction as the messages need it."""
    return care.Prediction(r["prediction_id"], r["host_id"], r["component"], r["kind"],
                           r["prediction"], r["detected_at"], r["last_seen"], r["evidence"],
                           r["last_evidence"])


def account_team(conn: Conn, customer: str) -> tuple[str, ...]:
    """The customer's account manager and team."""
    row = q(conn, "SELECT k.account_manager, (SELECT array_agg(t.person_id ORDER BY"
                  " t.person_id) FROM account_team t WHERE t.customer_id = k.id) AS team"
                  " FROM customers k WHERE k.id = %s", (customer,)).fetchone()
    if row is None:
        return ()
    return tuple(dict.fromkeys(p for p in [row["account_manager"], *(row["team"] or [])] if p))


def contact(conn: Conn, job: int, now: datetime) -> Slot | None:
    """In the planning transaction: book the slot inside the customer's windows, put the
    prediction and the plan on the timeline, and tell the customer and the account team."""
    r = q(conn, _JOB, (job,)).fetchone()
    slot = windows.next_slot(windows_of(conn, r["customer_id"]), now)
    if slot is not None:
        q(conn, "UPDATE proactive_jobs SET slot_start = %s, slot_end = %s WHERE id = %s",
          (slot.start, slot.end, job))
    p = prediction_of(r)
    job_event(conn, job, r["detected_at"], "collector", "predicted",
              {"prediction": r["prediction"], "evidence": care.evidence(p)})
    plan = care.Plan(job, slot.start if slot else None, slot.end if slot else None,
                     r["spare_part"], r["part_note"], r["site_id"])
    job_event(conn, job, now, "dispatcher", "planned",
              {"technician": r["technician_id"], "spare": r["spare_part"],
               "slot_start": slot and views.ts(slot.start), "slot_end": slot and views.ts(slot.end),
               "window": "inside the customer's maintenance window" if slot else
               "none: the customer has no maintenance window", "plan": care.plan_line(plan)})
    subject, body = care.prediction_message(p, plan, r["customer_id"])
    ref = f"prediction-{r['prediction_id']}-told"  # once per prediction, whatever re-plans it
    told = tell.customer(conn, r["customer_id"], reason="proactive_prediction",
                         subject=subject, body=body, ref=ref, at=now)
    told += tell.people(conn, account_team(conn, r["customer_id"]),
                        reason="proactive_prediction", subject=subject, body=body, ref=ref,
                        at=now)
    job_event(conn, job, now, "dispatcher", "told", {"about": "prediction and plan",
                                                      "to": told})
    return slot


def _locked(conn: Conn, job: int, customer: str | None) -> dict[str, Any]:
    r = q(conn, _JOB + " FOR UPDATE OF pj", (job,)).fetchone()
    if r is None or (customer is not None and r["customer_id"] != customer):
        raise PlanRefused(404, f"no planned work {job} on your hosts; list it at "
                               "/api/v1/planned-work")
    if r["state"] not in LIVE:
        raise PlanRefused(409, f"planned work {job} is already {r['state']}: nothing to "
                               "answer")
    if r["plan_state"] == PlanState.DECLINED:
        raise PlanRefused(409, f"planned work {job} was declined")
    return dict(r)


def answer(conn: Conn, job: int, customer: str, step: str, now: datetime,
           start: datetime | None = None, reason: str | None = None) -> None:
    """The customer accepts, moves (to `start`) or declines the plan, in the caller's
    transaction; the account team, the site and the technician are told."""
    r = _locked(conn, job, customer)
    actor = f"customer:{customer}"
    before = r["slot_start"]
    if step == "accepted":
        if r["plan_state"] == PlanState.ACCEPTED:
            return  # a repeated tap changes nothing
        q(conn, "UPDATE proactive_jobs SET plan_state = 'accepted', plan_answered_at = %s,"
                " plan_answered_by = %s WHERE id = %s", (now, actor, job))
    elif step == "moved":
        got = windows.check_move(windows_of(conn, customer), start or now, now)
        if isinstance(got, str):
            raise PlanRefused(422, got)
        if got.start == r["slot_start"]:
            return
        q(conn, "UPDATE proactive_jobs SET slot_start = %s, slot_end = %s, plan_state ="
                " 'proposed', plan_answered_at = %s, plan_answered_by = %s WHERE id = %s",
          (got.start, got.end, now, actor, job))
        r["slot_start"] = got.start
    else:
        _decline(conn, r, actor, reason, now)
    detail = {"slot_start": r["slot_start"] and views.ts(r["slot_start"]), "reason": reason}
    if step == "moved":
        detail["from"] = before and views.ts(before)
    event = job_event(conn, job, now, actor, f"plan_{step}", detail)
    subject, body = care.step_message(step, job, r["host_id"], r["component"], actor,
                                      r["slot_start"], reason)
    told = tell.people(conn, [*account_team(conn, customer), r["site_manager"],
                              r["technician_id"]], reason=f"proactive_plan_{step}",
                       subject=subject, body=body, ref=f"proactive-{job}-event-{event}", at=now)
    job_event(conn, job, now, "dispatcher", "told", {"about": f"plan {step}", "to": told})
    wake(conn, f"proactive:{job}")


def _decline(conn: Conn, r: dict[str, Any], actor: str, reason: str | None,
             now: datetime) -> None:
    """The customer does not want the part swapped: the job ends, the spare goes back, and
    planning stays quiet a week as after any dismissal (domain/proactive.py QUIET_AFTER)."""
    note = f"declined by the customer{f': {reason}' if reason else ''}"
    q(conn, "UPDATE proactive_jobs SET state = 'dismissed', finished_at = %s, finished_by = %s,"
            " note = %s, plan_state = 'declined', plan_answered_at = %s, plan_answered_by = %s"
            " WHERE id = %s", (now, actor, note, now, actor, r["id"]))
    q(conn, "UPDATE predictions SET state = 'dismissed', closed_at = %s WHERE id = %s"
            " AND state = 'open'", (now, r["prediction_id"]))
    spares.end_proactive(conn, r["id"], False, now)
