"""A customer's own contacts: the rows of `contacts` whose customer_id is set (the fleet file
owns the staff's and account people's rows, dispatcher/store/fleet.py, and never touches
these). Each is its own outbox recipient (`customer:<id>:email:<address>` or
`customer:<id>:webhook`), so the outbox, the delivery workers and the notification log serve
them unchanged. A test message goes through the outbox like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from dispatcher.store import Conn, outbox

MAX_PER_CUSTOMER = 10  # a team's on-call list and a chat hook; more is a mailing list's job
TEST_REASON = "contact_test"

_COLUMNS = ("c.id, c.person_id, c.channel, c.address, c.added_at, c.added_by,"
            " o.id AS test_id, o.state AS test_state, o.created_at AS test_at,"
            " o.done_at AS test_done_at, o.last_error AS test_error, d.outcome AS test_outcome,"
            " d.status_code AS test_status_code, d.error AS test_delivery_error")
# The latest test of each contact, and its latest attempt.
_FROM = (" FROM contacts c LEFT JOIN LATERAL (SELECT * FROM outbox o WHERE"
         " o.recipient = c.person_id AND o.reason = 'contact_test' ORDER BY o.id DESC LIMIT 1)"
         " o ON TRUE LEFT JOIN LATERAL (SELECT * FROM deliveries d WHERE d.outbox_id = o.id"
         " ORDER BY d.id DESC LIMIT 1) d ON TRUE")


def person_id(customer: str, channel: str, address: str) -> str:
    """The outbox recipient of one of a customer's contacts."""
    return f"customer:{customer}:webhook" if channel == "webhook" \
        else f"customer:{customer}:email:{address}"


def listed(conn: Conn, customer: str) -> list[dict[str, Any]]:
    """The customer's contacts, emails then the webhook, each with its latest test."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE c.customer_id = %s ORDER BY c.channel, c.address",
        (customer,)).fetchall()


def one(conn: Conn, customer: str, contact: int) -> dict[str, Any] | None:
    """One of the customer's contacts, or None (absent, or another customer's)."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE c.customer_id = %s AND c.id = %s",
        (customer, contact)).fetchone()


def count(conn: Conn, customer: str) -> int:
    """How many contacts the customer has."""
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT count(*) AS n FROM contacts WHERE customer_id = %s", (customer,)).fetchone()
    return int(row["n"]) if row else 0


def add(conn: Conn, customer: str, channel: str, address: str, actor: str,
        now: datetime) -> int:
    """Add an address (the same one again changes nothing); a new webhook replaces the old
    one. Returns the contact's id."""
    row = conn.cursor(row_factory=dict_row).execute(
        "INSERT INTO contacts (person_id, channel, address, customer_id, added_at, added_by)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (person_id, channel) DO UPDATE"
        " SET address = EXCLUDED.address, added_at = EXCLUDED.added_at,"
        " added_by = EXCLUDED.added_by WHERE contacts.address <> EXCLUDED.address"
        " RETURNING id", (person_id(customer, channel, address), channel, address, customer,
                          now, actor)).fetchone()
    if row is None:  # already there, unchanged
        row = conn.cursor(row_factory=dict_row).execute(
            "SELECT id FROM contacts WHERE person_id = %s AND channel = %s",
            (person_id(customer, channel, address), channel)).fetchone()
    assert row is not None  # noqa: S101 -- inserted or found just above
    return int(row["id"])


def remove(conn: Conn, customer: str, contact: int) -> bool:
    """Remove one of the customer's contacts; False if it is not theirs (or gone)."""
    cur = conn.execute("DELETE FROM contacts WHERE customer_id = %s AND id = %s",
                       (customer, contact))
    return cur.rowcount > 0


def send_test(conn: Conn, customer: str, contact: dict[str, Any], actor: str,
              now: datetime) -> None:
    """Queue a test message to one contact through the outbox (one per press)."""
    outbox.enqueue(
        conn, recipient=contact["person_id"], reason=TEST_REASON,
        subject="[Hourglass] test notification",
        body=(f"This is a test from Hourglass for {customer}, sent by {actor}. Incident "
              "notifications for your servers will arrive here like this one."),
        ref=f"contact-test:{contact['id']}:{now.timestamp():.6f}", at=now)
