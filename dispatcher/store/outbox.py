"""The notification outbox: messages written inside the deciding transaction, sent later.

Owns the `outbox` table's writes. `enqueue` never does network I/O: it writes one row per
channel the person has (contacts), idempotent by (ref, recipient, channel), so a repeated
decision enqueues nothing twice. `notify_pass` turns new timeline events and low-stock
alerts into messages exactly once. The delivery worker (dispatcher/delivery.py) sends them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import tuple_row

from dispatcher.domain import notify
from dispatcher.store import Conn
from schemas.wake import wake

log = logging.getLogger(__name__)
#: The recipient id of the billing system's signed credit webhook.
BILLING = "billing"
#: NOTIFY channel the delivery worker listens on (delivered at commit).
CHANNEL = "hourglass_outbox"
BATCH = 200  # events per notifier transaction: short locks, a backlog drains in a few passes


def enqueue(conn: Conn, *, recipient: str, reason: str, subject: str, body: str,
            ref: str, at: datetime) -> None:
    """Queue a message to a person on each of their channels; a repeated ref does nothing."""
    cur = conn.execute(
        "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
        " created_at, due_at)"
        " SELECT %(ref)s, c.person_id, c.channel, c.address, %(reason)s, %(subject)s,"
        " %(body)s, %(at)s, %(at)s FROM contacts c WHERE c.person_id = %(recipient)s"
        " ON CONFLICT (ref, recipient, channel) DO NOTHING",
        {"ref": ref, "recipient": recipient, "reason": reason, "subject": subject,
         "body": body, "at": at})
    if cur.rowcount > 0:
        wake(conn, "new")
    elif not has_contact(conn, recipient):
        # Someone who must act cannot be reached: loud, so the fleet file gets fixed.
        log.warning("no contact channel for %s; %s (%s) not queued", recipient, reason, ref)


def enqueue_email(conn: Conn, *, recipient: str, address: str, reason: str, subject: str,
                  body: str, ref: str, at: datetime) -> None:
    """Queue one email to one address (a sign-in link goes by email only, never a webhook)."""
    conn.execute(
        "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
        " created_at, due_at) VALUES (%s, %s, 'email', %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (ref, recipient, channel) DO NOTHING",
        (ref, recipient, address, reason, subject, body, at, at))
    wake(conn, "new")


def email_of(conn: Conn, person: str) -> str | None:
    """A person's email address from the fleet file, if any."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT address FROM contacts WHERE person_id = %s AND channel = 'email'",
        (person,)).fetchone()
    return str(row[0]) if row else None


def enqueue_billing(conn: Conn, *, url: str, credit: int, body: str, at: datetime,
                    ref: str | None = None) -> None:
    """Queue the signed credit webhook to billing; idempotent by the credit id (or `ref`)."""
    ref = ref or f"credit-{credit}"
    conn.execute(
        "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
        " created_at, due_at) VALUES (%s, %s, 'billing', %s, 'credit_issued', %s, %s, %s, %s)"
        " ON CONFLICT (ref, recipient, channel) DO NOTHING",
        (ref, BILLING, url, ref.replace("-", " "), body, at, at))
    wake(conn, "new")


def has_contact(conn: Conn, person: str) -> bool:
    """Whether the person has any channel at all."""
    row = conn.cursor(row_factory=tuple_row).execute(  # the API's connections give dicts
        "SELECT EXISTS (SELECT 1 FROM contacts WHERE person_id = %s)", (person,)).fetchone()
    return bool(row and row[0])


_CURSOR = ("SELECT xid::text, event_id FROM notifier_cursor WHERE name = 'events'"
           " FOR UPDATE SKIP LOCKED")
_AHEAD = "(e.xid, e.id) > (%(xid)s::xid8, %(id)s)"
_NEW = "NOT EXISTS (SELECT 1 FROM notified_events n WHERE n.event_id = e.id)"
_FINAL = "e.xid < pg_snapshot_xmin(pg_current_snapshot())"  # its transaction is over
_EVENTS = (
    "SELECT e.id, e.xid::text, e.at, e.actor, e.kind, e.detail, i.id, i.host_id, i.site_id,"
    " i.customer_id, i.component, i.failure, i.deadline, c.account_manager"
    " FROM incident_events e JOIN incidents i ON i.id = e.incident_id"
    f" JOIN customers c ON c.id = i.customer_id WHERE {_AHEAD} AND {_NEW}"
    " ORDER BY e.xid, e.id LIMIT %(limit)s"
)
# The cursor's next place: the last final event before the first final one not yet notified.
_ADVANCE = (
    f"WITH gap AS (SELECT e.xid, e.id FROM incident_events e WHERE {_AHEAD} AND {_FINAL}"
    f"   AND {_NEW} ORDER BY e.xid, e.id LIMIT 1)"
    f" SELECT e.xid::text, e.id FROM incident_events e WHERE {_AHEAD} AND {_FINAL}"
    "   AND NOT EXISTS (SELECT 1 FROM gap WHERE (e.xid, e.id) >= (gap.xid, gap.id))"
    " ORDER BY e.xid DESC, e.id DESC LIMIT 1"
)


def notify_pass(conn: Conn, now: datetime, billing_url: str = "", limit: int = BATCH) -> int:
    """Queue the messages of new timeline events and low-stock alerts; how many events read."""
    n = _events(conn, billing_url, limit)
    _alerts(conn, now)
    if billing_url:
        _facility_billing(conn, billing_url)
    return n


def facility_credit_body(conn: Conn, credit: int) -> str | None:
    """A facility credit's billing webhook body, shaped like a hardware credit's."""
    r = conn.execute(
        "SELECT id, facility_id, customer_id, host_id, amount, currency, percent, periods,"
        " late_seconds, policy, issued_at, restored_at FROM facility_credits WHERE id = %s",
        (credit,)).fetchone()
    if r is None:
        return None
    doc: dict[str, Any] = {
        "id": r[0], "source": "facility", "facility_incident": r[1], "customer": r[2],
        "host": r[3], "amount": str(r[4]), "currency": r[5], "percent": str(r[6]),
        "periods": r[7], "late_seconds": r[8], "policy": r[9],
        "issued_at": r[10].astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "restored_at": r[11].astimezone(UTC).isoformat().replace("+00:00", "Z")}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _facility_billing(conn: Conn, url: str) -> None:
    """Queue the signed webhook of each facility credit not yet queued (key facility-credit-ID)."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT fc.id, fc.issued_at FROM facility_credits fc WHERE NOT EXISTS (SELECT 1"
            " FROM outbox o WHERE o.ref = 'facility-credit-' || fc.id AND o.recipient = %s"
            " AND o.channel = 'billing') ORDER BY fc.id LIMIT %s", (BILLING, BATCH)).fetchall()
        for credit, issued in rows:
            body = facility_credit_body(conn, credit)
            if body is not None:
                enqueue_billing(conn, url=url, credit=credit, body=body, at=issued,
                                ref=f"facility-credit-{credit}")


def _events(conn: Conn, billing_url: str, limit: int) -> int:
    with conn.transaction():
        cursor = conn.execute(_CURSOR).fetchone()
        if cursor is None:
            return 0  # another dispatcher's notifier is on it
        at = {"xid": cursor[0], "id": cursor[1], "limit": limit}
        rows = conn.execute(_EVENTS, at).fetchall()
        teams: dict[str, notify.AccountTeam] = {}
        for r in rows:
            _event(conn, r, teams, billing_url)
        conn.cursor().executemany("INSERT INTO notified_events (event_id) VALUES (%s)",
                                  [(r[0],) for r in rows])
        moved = conn.execute(_ADVANCE, at).fetchone()
        if moved is not None:
            conn.execute("UPDATE notifier_cursor SET xid = %s::xid8, event_id = %s"
                         " WHERE name = 'events'", moved)
            conn.execute("DELETE FROM notified_events n USING incident_events e"
                         " WHERE e.id = n.event_id AND (e.xid, e.id) <= (%s::xid8, %s)", moved)
    return len(rows)


def _event(conn: Conn, r: Any, teams: dict[str, notify.AccountTeam], billing_url: str) -> None:
    """Queue one event's messages (and a credit's billing webhook)."""
    event = notify.Event(r[0], r[2], r[3], r[4], r[5])
    incident = notify.Incident(*r[6:13])
    if incident.customer not in teams:
        teams[incident.customer] = _team(conn, incident.customer, r[13])
    for m in notify.messages(event, incident, teams[incident.customer]):
        enqueue(conn, recipient=m.recipient, reason=m.reason, subject=m.subject,
                body=m.body, ref=f"incident:{incident.id}:event:{event.id}", at=event.at)
    if event.kind == "credit_issued" and "credit" in event.detail:
        _billing(conn, int(event.detail["credit"]), billing_url, event.at)


def account_team(conn: Conn, customer: str) -> notify.AccountTeam:
    """A customer's account manager and team, as the incident notifications find them."""
    row = conn.execute("SELECT account_manager FROM customers WHERE id = %s",
                       (customer,)).fetchone()
    return _team(conn, customer, row[0] if row else None)


def _team(conn: Conn, customer: str, manager: str | None) -> notify.AccountTeam:
    members = tuple(r[0] for r in conn.execute(
        "SELECT person_id FROM account_team WHERE customer_id = %s ORDER BY person_id",
        (customer,)))
    own = tuple(r[0] for r in conn.execute(  # the customer's own contacts (store/contacts.py)
        "SELECT person_id FROM contacts WHERE customer_id = %s ORDER BY person_id",
        (customer,)))
    return notify.AccountTeam(manager, members, own)


def credit_body(conn: Conn, credit: int) -> str | None:
    """The billing webhook's body: the credit as JSON (money as decimal strings)."""
    r = conn.execute(
        "SELECT c.id, c.incident_id, c.customer_id, i.host_id, c.amount, c.currency, c.percent,"
        " c.periods, c.late_seconds, c.policy, c.issued_at FROM credits c"
        " JOIN incidents i ON i.id = c.incident_id WHERE c.id = %s", (credit,)).fetchone()
    if r is None:
        return None
    doc: dict[str, Any] = {
        "id": r[0], "incident": r[1], "customer": r[2], "host": r[3], "amount": str(r[4]),
        "currency": r[5], "percent": str(r[6]), "periods": r[7], "late_seconds": r[8],
        "policy": r[9], "issued_at": r[10].astimezone(UTC).isoformat().replace("+00:00", "Z")}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _billing(conn: Conn, credit: int, url: str, at: datetime) -> None:
    if not url:
        log.info("credit %s issued; no notify.billing_webhook_url, not pushed", credit)
        return
    body = credit_body(conn, credit)
    if body is not None:
        enqueue_billing(conn, url=url, credit=credit, body=body, at=at)


def _alerts(conn: Conn, now: datetime) -> None:
    with conn.transaction():
        rows = conn.execute(
            "SELECT a.id, a.site_id, a.part, a.kind, a.available, a.threshold, a.at,"
            " s.manager_id FROM spare_alerts a JOIN sites s ON s.id = a.site_id"
            " WHERE NOT EXISTS (SELECT 1 FROM notified_alerts n WHERE n.alert_id = a.id)"
            " ORDER BY a.id LIMIT %s", (BATCH,)).fetchall()
        for r in rows:
            # The key makes a concurrent pass wait for this one, then skip the alert.
            claimed = conn.execute("INSERT INTO notified_alerts (alert_id, at) VALUES (%s, %s)"
                                   " ON CONFLICT DO NOTHING RETURNING alert_id",
                                   (r[0], now)).fetchone()
            if claimed is None:
                continue
            for m in notify.low_stock(notify.LowStock(*r[:7]), r[7]):
                enqueue(conn, recipient=m.recipient, reason=m.reason, subject=m.subject,
                        body=m.body, ref=f"spare_alert:{r[0]}", at=r[6])
