"""The dispatcher loop: assigns new incidents, verifies fixes, issues credits.

Each pass claims rows with `FOR UPDATE SKIP LOCKED`, so several dispatchers may run; every
decision comes from the pure domain modules, every clock from timestamps in the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from dispatcher.domain import credit, policy, promise, verify
from dispatcher.domain.incident import Event
from dispatcher.service import assignment, auditor, escalation, facility, proactive, timers
from dispatcher.store import CHANNEL, OPEN_SQL, Conn, claims, event, executives, incidents, outbox

__all__ = ["CHANNEL", "Engine", "assign_new", "event", "run_pass", "verify_open"]
log = logging.getLogger(__name__)


def assign_new(conn: Conn, now: datetime) -> int:
    """Dispatch every incident still waiting, a site's burst at once (min-cost matching),
    with a spare reserved; settle spares of fixed or closed incidents; escalate when needed."""
    return assignment.assign_bursts(conn, now)




def verify_open(conn: Conn, now: datetime, classes: credit.ClassPolicy | None = None) -> int:
    """Mark verified every open incident whose part telemetry shows healthy; credit late ones."""
    ids = [r[0] for r in conn.execute(
        f"SELECT i.id FROM incidents i WHERE i.state IN {OPEN_SQL}"
        " AND EXISTS (SELECT 1 FROM components c WHERE c.host_id = i.host_id"
        "   AND c.status = 'ok' AND c.status_ts > i.detected_at"
        "   AND (c.id = i.component OR (c.kind = i.kind AND c.slot = i.slot)))")]
    n = 0
    for incident in ids:
        with conn.transaction():
            n += _verify_one(conn, incident, now, classes or credit.ClassPolicy())
    return n


def _verify_one(conn: Conn, incident: int, now: datetime, classes: credit.ClassPolicy) -> int:
    row = conn.execute(
        "SELECT i.host_id, i.component, i.kind, i.slot, i.serial, i.detected_at, i.sla_minutes,"
        " i.customer_id, h.monthly_fee, h.currency, c.credit_percent, c.credit_period_minutes,"
        " c.credit_cap_percent, i.failure FROM incidents i JOIN hosts h ON h.id = i.host_id"
        f" JOIN customers c ON c.id = i.customer_id WHERE i.id = %s AND i.state IN {OPEN_SQL}"
        " FOR UPDATE OF i SKIP LOCKED", (incident,)).fetchone()
    if row is None:
        return 0
    host, component, kind, slot, serial, detected, sla_minutes, customer, fee, currency = row[:10]
    # The contract's own period when it names one, else the failure class's (power 30 min).
    policy_ = credit.policy_for(row[13], classes, Decimal(row[10]),
                                None if row[11] is None else float(row[11]), Decimal(row[12]))
    done = promise.settle(verify.Failed(component, kind, slot, serial, detected),
                          incidents.observations(conn, host), incidents.pauses(conn, incident),
                          promise.Terms(sla_minutes, Decimal(fee), policy_))
    if done is None:
        return 0
    fixed, due, decision = done.fixed_at, done.deadline, done.credit
    conn.execute("UPDATE pauses SET ended_at = greatest(started_at, %s), ended_by = 'telemetry'"
                 " WHERE incident_id = %s AND ended_at IS NULL", (fixed, incident))
    incidents.verify(conn, incident, fixed, due, now,
                     {"component": done.proof.id, "serial": done.proof.serial})
    if decision is not None:
        issue_credit(conn, incident, customer, currency, decision, policy_, now)
    if done.late:
        _breach_on_record(conn, incident, due, fixed, now)
    log.info("incident %s verified at %s%s", incident, fixed,
             f", credit {decision.amount} {currency}" if decision else "")
    return 1


def _breach_on_record(conn: Conn, incident: int, due: datetime, fixed: datetime,
                      now: datetime) -> None:
    """Escalate a late fix's breach unless a breach timer already did (the caller locks)."""
    if escalation.escalated_before(conn, incident, policy.TimerKind.BREACH.value):
        return
    site = conn.execute("SELECT site_id FROM incidents WHERE id = %s", (incident,)).fetchone()
    executive = policy.executive_on_duty(executives(conn), site[0] if site else "", now)
    escalation.notify(conn, incident, policy.on_late_fix(due, fixed, executive), now,
                      {"deadline": due.isoformat(), "verified_at": fixed.isoformat()})


def issue_credit(conn: Conn, incident: int, customer: str, currency: str,
                 decision: credit.CreditDecision, policy: credit.CreditPolicy,
                 now: datetime) -> None:
    """Write the credit once; the ledger's unique key makes a second write a no-op."""
    row = conn.execute(
        "INSERT INTO credits (incident_id, customer_id, amount, currency, percent, periods,"
        " late_seconds, policy, issued_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (incident_id) DO NOTHING RETURNING id",
        (incident, customer, decision.amount, currency, decision.percent, decision.periods,
         decision.late_seconds,
         Jsonb({"percent": str(policy.percent), "period_minutes": policy.period_minutes,
                "cap_percent": str(policy.cap_percent)}), now)).fetchone()
    if row is not None:
        event(conn, incident, now, "dispatcher", "credit_issued",
              {"credit": row[0], "amount": str(decision.amount), "currency": currency,
               "percent": str(decision.percent), "periods": decision.periods})


def auto_close(conn: Conn, p: policy.TimerPolicy, now: datetime, limit: int = 50) -> int:
    """Close verified incidents the customer left unconfirmed past the quiet period."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, state, verified_at FROM incidents WHERE state = 'verified'"
            " AND verified_at <= %s ORDER BY verified_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (now - p.auto_close_after, limit)).fetchall()
        for incident, state, verified_at in rows:
            if not policy.should_auto_close(state, verified_at, p, now):
                continue
            # Closed at the end of the quiet period, a recorded time, however late the pass.
            closed = policy.auto_close_at(verified_at, p)
            hours = p.auto_close_after.total_seconds() / 3600
            incidents.close(conn, incident, closed, now, "auto", Event.AUTO_CLOSE,
                            {"reason": f"not confirmed by the customer within {hours:g} h of "
                                       "the verified fix", "quiet_hours": hours,
                             "verified_at": verified_at.isoformat()})
            log.info("incident %s closed automatically after %g h unconfirmed", incident, hours)
    return len(rows)


def _duties(conn: Conn, p: policy.TimerPolicy, clock: Callable[[], datetime],
            worker: str) -> datetime:
    """Every duty of one pass, each at a fresh `clock()`; returns the pass's start."""
    now = clock()
    verify_open(conn, now, p.credit_classes)
    assign_new(conn, now)
    # Planned work from predictions, after the failures: never a technician on an SLA job.
    proactive.run(conn, clock(), p.proactive_off_shift)
    timers.plan_pending(conn, p, now)
    while timers.fire_due(conn, p, clock(), worker) == timers.BATCH:
        pass  # timers fire in batches, each batch at a fresh `now`
    # Facility incidents: site manager and account teams told, executive at the
    # deadline, each host credited on resolution; each step once by a unique key.
    facility.dispatch_pass(conn, clock(), worker)
    auto_close(conn, p, clock())
    claims.end_notices(conn, clock())  # a claim's 30-day notice ended: recorded and told once
    return now


def run_pass(conn: Conn, p: policy.TimerPolicy, now: datetime, worker: str,
             billing_url: str = "") -> None:
    """One pass of every duty at one `now`: verify, assign, plan and fire timers, notify."""
    _duties(conn, p, lambda: now, worker)
    outbox.notify_pass(conn, now, billing_url)


class Engine:
    """Runs the passes in a loop, woken early by NOTIFY and by the soonest timer."""

    def __init__(self, url: str, tick_s: float, p: policy.TimerPolicy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 audit_every_s: float = auditor.EVERY_S) -> None:
        self.url = url
        self.tick_s = tick_s
        self.policy = p or policy.TimerPolicy()
        self.clock = clock
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stop = threading.Event()
        self.last_pass: datetime | None = None
        self.audit_every = timedelta(seconds=audit_every_s)
        self.last_audit: auditor.Audit | None = None

    def run(self) -> None:
        """Loop until stopped; a database outage is waited out, never fatal."""
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn, \
                        psycopg.connect(self.url, autocommit=True) as listen:
                    listen.execute(f"LISTEN {CHANNEL}")
                    while not self.stop.is_set():
                        self.run_once(conn)
                        for _ in listen.notifies(timeout=self.sleep_s(conn), stop_after=1):
                            pass
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying", exc)
                self.stop.wait(1.0)

    def run_once(self, conn: Conn) -> None:
        """One pass of every duty; messages are queued and sent by the delivery threads
        (dispatcher/delivery.py), never from this loop."""
        now = _duties(conn, self.policy, self.clock, self.name)
        self.last_pass = now
        # The auditor every few seconds: a stranded incident is logged as an ERROR.
        if self.last_audit is None or now - self.last_audit.at >= self.audit_every:
            self.last_audit = auditor.run(conn, self.clock())

    def sleep_s(self, conn: Conn) -> float:
        """Until the soonest timer is due, at most one tick (which bounds a missed NOTIFY)."""
        due = timers.next_due(conn)
        if due is None:
            return self.tick_s
        return max(0.0, min(self.tick_s, (due - self.clock()).total_seconds()))
