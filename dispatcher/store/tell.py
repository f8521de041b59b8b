"""Who a customer is to the outbox: its people's addresses. Writes only through outbox.py.

A customer's people are the addresses it signs in with (customer_users: a link was made for
each), each its own recipient `customer:<id>:<email>` as sign-in links are; and any channel
kept for `customer:<id>` itself in contacts (a webhook). Staff are reached by their own ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg.rows import tuple_row

from dispatcher.store import Conn, outbox


def customer(conn: Conn, customer_id: str, *, reason: str, subject: str, body: str, ref: str,
             at: datetime) -> list[str]:
    """Queue one message to each of the customer's people (once per ref); who was told."""
    emails = [str(r[0]) for r in conn.cursor(row_factory=tuple_row).execute(
        "SELECT email FROM customer_users WHERE customer_id = %s ORDER BY email",
        (customer_id,))]
    told: list[str] = []
    for email in emails:
        recipient = f"customer:{customer_id}:{email}"
        outbox.enqueue_email(conn, recipient=recipient, address=email, reason=reason,
                             subject=subject, body=body, ref=ref, at=at)
        told.append(recipient)
    own = f"customer:{customer_id}"
    if outbox.has_contact(conn, own):
        outbox.enqueue(conn, recipient=own, reason=reason, subject=subject, body=body, ref=ref,
                       at=at)
        told.append(own)
    return told


def people(conn: Conn, ids: Iterable[str | None], *, reason: str, subject: str, body: str,
           ref: str, at: datetime) -> list[str]:
    """Queue the message to each staff or account person once; those who could be reached."""
    told: list[str] = []
    for person in dict.fromkeys(p for p in ids if p):
        outbox.enqueue(conn, recipient=person, reason=reason, subject=subject, body=body,
                       ref=ref, at=at)
        if outbox.has_contact(conn, person):
            told.append(person)
    return told
