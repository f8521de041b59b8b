"""The dispatcher's pass over facility incidents: tell people once, credit each host once.

Each step (opened, breach, credited) runs in one transaction per facility incident that
first takes the step's unique key in `facility_steps`: a second dispatcher, or this one
after a crash, finds the key taken and does nothing. Rows are claimed with
`FOR UPDATE SKIP LOCKED` so two passes at once work on different incidents. Messages go
through the outbox (written in the same transaction), each recorded as a facility event.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from dispatcher.domain import credit, policy
from dispatcher.domain import facility as domain
from dispatcher.domain.notify import AccountTeam, Message
from dispatcher.store import Conn, executives, outbox
from schemas.wake import wake

log = logging.getLogger(__name__)
ACTOR = "dispatcher"
BATCH = 50  # facility incidents per step and pass: short transactions, a backlog drains
#: A rack that came back before any dispatcher told anyone (all were down) is still news to
#: the manager and account teams for a day; older outages are not announced (so a first
#: deploy of migration 011 does not page people about every outage on record).
LATE_NEWS = "24 hours"

_ROW = (
    "SELECT f.id, f.site_id, s.name, f.rack, f.cause, f.detected_at, f.deadline,"
    " f.resolved_at, f.credit_percent, f.credit_period_minutes, f.credit_cap_percent,"
    " s.manager_id, f.scope, f.scope_id FROM facility_incidents f"
    " JOIN sites s ON s.id = f.site_id")


def _facility(r: Any) -> domain.Facility:
    return domain.Facility(
        int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7],
        credit.CreditPolicy(Decimal(r[8]), float(r[9]), Decimal(r[10])), r[12], r[13])


def event(conn: Conn, facility: int, at: datetime, actor: str, kind: str,
          detail: dict[str, Any]) -> None:
    """Append one entry to a facility incident's timeline."""
    conn.execute("INSERT INTO facility_events (facility_id, at, actor, kind, detail)"
                 " VALUES (%s, %s, %s, %s, %s)", (facility, at, actor, kind, Jsonb(detail)))


def _take(conn: Conn, facility: int, step: str, now: datetime, worker: str) -> bool:
    """Take the step's unique key; False when it was already taken (the step is done)."""
    row = conn.execute(
        "INSERT INTO facility_steps (facility_id, step, at, worker) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING facility_id",
        (facility, step, now, worker)).fetchone()
    return row is not None


def _tell(conn: Conn, f: domain.Facility, m: Message, step: str, role: str, now: datetime,
          extra: dict[str, Any] | None = None) -> None:
    outbox.enqueue(conn, recipient=m.recipient, reason=m.reason, subject=m.subject,
                   body=m.body, ref=f"facility:{f.id}:{step}", at=now)
    event(conn, f.id, now, ACTOR, "notified",
          {"step": step, "to": m.recipient, "role": role, "reason": m.body, **(extra or {})})


def _claim(conn: Conn, where: str, step: str, now: datetime) -> list[Any]:
    return conn.execute(
        _ROW + f" WHERE {where} AND NOT EXISTS (SELECT 1 FROM facility_steps st"
        " WHERE st.facility_id = f.id AND st.step = %(step)s)"
        " ORDER BY f.id LIMIT %(limit)s FOR UPDATE OF f SKIP LOCKED",
        {"now": now, "step": step, "limit": BATCH}).fetchall()


def notify_opened(conn: Conn, now: datetime, worker: str) -> int:
    """Tell the site manager and every affected customer's account team, once per incident."""
    n = 0
    with conn.transaction():
        for r in _claim(conn, "(f.state = 'open' OR f.resolved_at > %(now)s - interval"
                              f" '{LATE_NEWS}')", "opened", now):
            if not _take(conn, r[0], "opened", now, worker):
                continue
            f = _facility(r)
            teams: dict[str, tuple[AccountTeam, int]] = {}
            for customer, hosts in conn.execute(
                    "SELECT customer_id, count(*) FROM facility_incident_hosts"
                    " WHERE facility_id = %s GROUP BY customer_id ORDER BY customer_id",
                    (f.id,)).fetchall():
                teams[customer] = (outbox.account_team(conn, customer), int(hosts))
            manager = r[11]
            if not manager:
                log.warning("facility %s: site %s has no manager to tell", f.id, f.site)
            for m in domain.opened(f, manager, teams):
                role = "manager" if m.recipient == manager else "account_team"
                _tell(conn, f, m, "opened", role, now)
            wake(conn, f"facility:{f.id}")
            n += 1
    return n


def notify_breach(conn: Conn, now: datetime, worker: str) -> int:
    """The deadline passed unresolved (or resolved late): the executive on duty, once."""
    n = 0
    with conn.transaction():
        for r in _claim(conn, "f.deadline <= %(now)s AND (f.resolved_at IS NULL"
                              " OR f.resolved_at > f.deadline)", "breach", now):
            if not _take(conn, r[0], "breach", now, worker):
                continue
            f = _facility(r)
            executive = policy.executive_on_duty(executives(conn), f.site, now)
            if executive is None:
                log.warning("facility %s: deadline passed and no executive to tell", f.id)
                event(conn, f.id, now, ACTOR, "notified",
                      {"step": "breach", "to": None, "role": "executive",
                       "reason": "deadline passed; no executive on record"})
            else:
                _tell(conn, f, domain.breach(f, executive, now), "breach", "executive", now,
                      {"deadline": f.deadline.isoformat()})
            n += 1
    return n


def credit_resolved(conn: Conn, now: datetime, worker: str) -> int:
    """Credit each late host of every resolved facility incident, once; credits written."""
    n = 0
    with conn.transaction():
        for r in _claim(conn, "f.state = 'resolved'", "credited", now):
            if not _take(conn, r[0], "credited", now, worker):
                continue
            f = _facility(r)
            hosts = [domain.LinkedHost(h[0], h[1], Decimal(h[2]), h[3], h[4]) for h in
                     conn.execute(
                         "SELECT fh.host_id, fh.customer_id, h.monthly_fee, h.currency,"
                         " fh.back_at FROM facility_incident_hosts fh JOIN hosts h"
                         " ON h.id = fh.host_id WHERE fh.facility_id = %s ORDER BY fh.host_id",
                         (f.id,))]
            written = [(h, d) for h, restored, d in domain.credits(f, hosts)
                       if _issue(conn, f, h, restored, d, now)]
            event(conn, f.id, now, ACTOR, "credited",
                  {"hosts": len(hosts), "credits": len(written)})
            teams = {c: outbox.account_team(conn, c) for c in {h.customer for h, _ in written}}
            for m in domain.credited(f, teams, written):
                _tell(conn, f, m, "credited", "account_team", now)
            n += len(written)
            wake(conn, f"facility:{f.id}")
    return n


def _issue(conn: Conn, f: domain.Facility, h: domain.LinkedHost, restored: datetime,
           d: credit.CreditDecision, now: datetime) -> int:
    """Write one host's credit; the ledger's unique key makes a second write a no-op."""
    p = f.policy
    row = conn.execute(
        "INSERT INTO facility_credits (facility_id, host_id, customer_id, amount, currency,"
        " percent, periods, late_seconds, restored_at, policy, issued_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (facility_id, host_id) DO NOTHING RETURNING id",
        (f.id, h.host, h.customer, d.amount, h.currency, d.percent, d.periods, d.late_seconds,
         restored, Jsonb({"percent": str(p.percent), "period_minutes": p.period_minutes,
                          "cap_percent": str(p.cap_percent)}), now)).fetchone()
    if row is None:
        return 0
    event(conn, f.id, now, ACTOR, "credit_issued",
          {"credit": row[0], "host": h.host, "customer": h.customer, "amount": str(d.amount),
           "currency": h.currency, "percent": str(d.percent), "periods": d.periods})
    return 1


def dispatch_pass(conn: Conn, now: datetime, worker: str) -> None:
    """Every facility duty at one `now`: tell on open, escalate at the deadline, credit."""
    notify_opened(conn, now, worker)
    notify_breach(conn, now, worker)
    credit_resolved(conn, now, worker)
