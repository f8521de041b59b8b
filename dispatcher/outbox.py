"""The notification outbox: messages written inside the deciding transaction, sent later.

Owns the `outbox` table's writes. `enqueue` never does network I/O: it writes one row per
channel the person has (contacts), idempotent by (ref, recipient, channel), so a repeated
decision enqueues nothing twice. The delivery worker (dispatcher/notify.py) sends them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from dispatcher.store import Conn

log = logging.getLogger(__name__)
#: The recipient id of the billing system's signed credit webhook.
BILLING = "billing"


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
    if cur.rowcount == 0 and not has_contact(conn, recipient):
        log.info("no contact channel for %s; %s (%s) not queued", recipient, reason, ref)


def enqueue_billing(conn: Conn, *, url: str, credit: int, body: str, at: datetime) -> None:
    """Queue the signed credit webhook to billing; idempotent by the credit id."""
    conn.execute(
        "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
        " created_at, due_at) VALUES (%s, %s, 'billing', %s, 'credit_issued', %s, %s, %s, %s)"
        " ON CONFLICT (ref, recipient, channel) DO NOTHING",
        (f"credit-{credit}", BILLING, url, f"credit {credit}", body, at, at))


def has_contact(conn: Conn, person: str) -> bool:
    """Whether the person has any channel at all."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM contacts WHERE person_id = %s)",
                       (person,)).fetchone()
    return bool(row and row[0])
