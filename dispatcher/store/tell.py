"""Who a customer is to the outbox: its own contacts. Writes only through outbox.py.

A customer's contacts are the rows of `contacts` whose customer_id names it (the emails and
the webhook it manages on /status, dispatcher/store/contacts.py), each its own recipient
(`customer:<id>:email:<address>`, `customer:<id>:webhook`), as the incident notifications
address them (outbox.account_team). Staff and account people are reached by their own ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg.rows import tuple_row

from dispatcher.store import Conn, outbox


def customer(conn: Conn, customer_id: str, *, reason: str, subject: str, body: str, ref: str,
             at: datetime) -> list[str]:
    """Queue one message to each of the customer's contacts (once per ref); who was told."""
    recipients = [str(r[0]) for r in conn.cursor(row_factory=tuple_row).execute(
        "SELECT DISTINCT person_id FROM contacts WHERE customer_id = %s ORDER BY person_id",
        (customer_id,))]
    for recipient in recipients:
        outbox.enqueue(conn, recipient=recipient, reason=reason, subject=subject, body=body,
                       ref=ref, at=at)
    return recipients


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
