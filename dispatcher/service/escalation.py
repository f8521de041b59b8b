"""Applies the policy's timed decisions: reassign, escalate, reopen; each an incident event.

Every event names who was notified, why, and when (the event's time), plus the timer and the
time it was due. Notifications go out through NOTIFY, which PostgreSQL delivers at commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from dispatcher import store
from dispatcher.domain import assign, policy
from dispatcher.service import foresight, plans
from dispatcher.store import Conn, incidents

log = logging.getLogger(__name__)
ACTOR = "dispatcher"


def act(conn: Conn, s: policy.Snapshot, kind: str, p: policy.TimerPolicy, now: datetime,
        ref: dict[str, Any]) -> str:
    """Decide with the pure policy and persist the decision; returns the timer's outcome."""
    site, tz_name, manager = _site(conn, s.incident)
    if kind == policy.TimerKind.ACK_TIMEOUT:
        previous = [r[0] for r in conn.execute(
            "SELECT technician_id FROM jobs WHERE incident_id = %s ORDER BY id", (s.incident,))]
        kind_of = conn.execute("SELECT kind FROM incidents WHERE id = %s",
                               (s.incident,)).fetchone()
        choice = assign.choose(kind_of[0] if kind_of else "", site,
                               store.technicians(conn, site), previous, manager, now,
                               store.tz(tz_name))
        decision = policy.on_ack_timeout(s, choice, manager, p)
        if isinstance(decision, policy.Reassign):
            return reassign(conn, s.incident, decision, now, ref)
        return notify(conn, s.incident, decision, now, ref)
    if kind == policy.TimerKind.RISK:
        return notify(conn, s.incident, policy.on_risk(s, manager, p), now, ref)
    if kind == policy.TimerKind.BREACH:
        executive = policy.executive_on_duty(store.executives(conn), site, now)
        return notify(conn, s.incident, policy.on_breach(s, executive), now, ref)
    return reopen(conn, s.incident, policy.on_verify_timeout(s, manager, p), now, ref)


def _site(conn: Conn, incident: int) -> tuple[str, str, str | None]:
    row = conn.execute("SELECT s.id, s.timezone, s.manager_id FROM incidents i JOIN sites s"
                       " ON s.id = i.site_id WHERE i.id = %s", (incident,)).fetchone()
    assert row is not None  # the caller holds the incident's row lock
    return row[0], row[1], row[2]


def notify(conn: Conn, incident: int, n: policy.Notify, now: datetime,
           ref: dict[str, Any] | None = None, *, once: bool = False) -> str:
    """The one escalation: tell a person why, on the timeline (who, why, when), and wake
    whoever watches the incident.

    A timed escalation with no one to tell is only logged ('nobody'). With ``once`` the
    step is recorded at most once per incident, and recorded even with no one to tell:
    the assignment's escalations (no technician, no spare) are the timeline's only word
    that nobody could be sent. Returns the timer outcome: 'acted', 'nobody' or 'repeat'.
    """
    if once and escalated_before(conn, incident, str(n.step)):
        return "repeat"
    if n.to is None and not once:
        log.warning("incident %s: %s escalation has no %s to notify: %s", incident, n.step,
                    n.role, n.reason)
        return "nobody"
    store.event(conn, incident, now, ACTOR, "escalated",
                {"step": str(n.step), "to": n.to, "role": n.role, "reason": n.reason,
                 **(ref or {})})
    store.wake(conn, f"incident:{incident}")
    log.warning("incident %s escalated (%s) to %s: %s", incident, n.step, n.to, n.reason)
    return "acted"


def escalated_before(conn: Conn, incident: int, step: str) -> bool:
    """Whether the incident's timeline already holds an escalation of this step."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM incident_events WHERE incident_id = %s"
        " AND kind = 'escalated' AND detail->>'step' = %s)", (incident, step)).fetchone()
    return bool(row and row[0])


def reassign(conn: Conn, incident: int, r: policy.Reassign, now: datetime,
             ref: dict[str, Any]) -> str:
    """Cancel the unacknowledged job and dispatch the next technician: the one transfer; a
    breach its predicted fix already foresees is told to the manager at once."""
    plan = plans.site_plan(conn, _site(conn, incident)[0], now)  # before the job moves
    job = incidents.reassign(conn, incident, r.job, r.to_technician, now, ACTOR,
                             {"from": r.from_technician, "to": r.to_technician,
                              "reason": r.reason, **ref})
    told = None if plan is None or job is None else foresight.after_move(
        conn, incident, job, r.to_technician, plan, now)
    if told is not None:
        notify(conn, incident, told.notify, now, told.ref, once=told.once)
    log.warning("incident %s reassigned from %s to %s: %s", incident, r.from_technician,
                r.to_technician, r.reason)
    return "acted"


def reopen(conn: Conn, incident: int, r: policy.Reopen, now: datetime,
           ref: dict[str, Any]) -> str:
    """Send the job back to on_site and tell the manager."""
    incidents.reopen(conn, incident, r.job, now, ACTOR,
                     {"job": r.job, "technician": r.technician, "to": r.notify.to,
                      "role": r.notify.role, "reason": r.notify.reason, **ref})
    log.warning("incident %s reopened, %s notified: %s", incident, r.notify.to,
                r.notify.reason)
    return "acted"


def latest(conn: Conn, incident: int) -> tuple[int, dict[str, Any]] | None:
    """The incident's latest escalation: its timeline entry's id and detail."""
    row = conn.execute("SELECT id, detail FROM incident_events WHERE incident_id = %s"
                       " AND kind = 'escalated' ORDER BY id DESC LIMIT 1", (incident,)).fetchone()
    return (int(row[0]), dict(row[1] or {})) if row else None


def answered(conn: Conn, incident: int, escalation: int, kind: str,
             actor: str) -> dict[str, Any] | None:
    """This person's earlier answer of this kind to this escalation, if any."""
    row = conn.execute("SELECT at, detail FROM incident_events WHERE incident_id = %s"
                       " AND kind = %s AND actor = %s AND (detail->>'escalation')::bigint = %s"
                       " ORDER BY id LIMIT 1", (incident, kind, actor, escalation)).fetchone()
    return {"at": row[0], **dict(row[1] or {})} if row else None


def take(conn: Conn, incident: int, escalation: int, person: str, actor: str,
         now: datetime) -> None:
    """A manager has the escalation ("I have it"): on the timeline, who and when."""
    store.event(conn, incident, now, actor, "escalation_acknowledged",
                {"escalation": escalation, "by": person})
    store.wake(conn, f"incident:{incident}")


def pass_on(conn: Conn, incident: int, escalation: int, detail: dict[str, Any], person: str,
            actor: str, now: datetime, reason: str | None = None) -> str | None:
    """A manager declines the escalation ("not me"): on the timeline, and on to the next
    step of the chain at once (a manager's goes to the executive on duty; an executive's
    is the last step). Returns who it went to, or None."""
    site = _site(conn, incident)[0]
    nxt = None
    if detail.get("role") == "manager":
        nxt = policy.executive_on_duty(store.executives(conn), site, now)
        nxt = None if nxt == person else nxt
    store.event(conn, incident, now, actor, "escalation_declined",
                {"escalation": escalation, "by": person, "next": nxt, "reason": reason})
    if nxt is not None:
        notify(conn, incident, policy.Notify("declined", nxt, "executive",
                                             f"{person} declined the escalation "
                                             f"({detail.get('step')}): {detail.get('reason')}"),
               now, {"declined_escalation": escalation})
    else:
        store.wake(conn, f"incident:{incident}")
    return nxt
