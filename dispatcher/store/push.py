"""Web Push's tables: the server's VAPID key, staff's subscriptions, and push outbox rows.

Owns `push_keys` and `push_subscriptions`, and writes the outbox's push rows (one per
subscription of the person a notification is for, queued by `outbox.enqueue` in the
deciding transaction). The sending is dispatcher/delivery.py's; the checks and the payload
are dispatcher/domain/push.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg.rows import dict_row, tuple_row

from dispatcher.domain import push
from dispatcher.store import Conn

#: An incident's notification: a timeline entry's ("incident:7:event:40"), or another one
#: keyed by its incident ("incident:7:breach_foreseen").
_INCIDENT_REF = re.compile(r"^incident:(\d+)(?=:|$)(?::event:(\d+)$)?")
SUBSCRIPTION_COLUMNS = "id, endpoint, device, created_at, last_success_at, last_failure"


@dataclass(frozen=True)
class Vapid:
    """The server's VAPID key pair."""

    private_pem: str
    public_key: str  # base64url, no padding: the applicationServerKey browsers subscribe with


def new_key() -> Vapid:
    """A fresh P-256 key pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return Vapid(pem, push.b64url_encode(point))


def ensure_key(conn: Conn, now: datetime) -> Vapid:
    """The server's key, made on the first call ever; concurrent first calls keep one."""
    known = vapid(conn)
    if known is not None:
        return known
    fresh = new_key()
    conn.execute("INSERT INTO push_keys (one, private_pem, public_key, created_at)"
                 " VALUES (true, %s, %s, %s) ON CONFLICT (one) DO NOTHING",
                 (fresh.private_pem, fresh.public_key, now))
    key = vapid(conn)
    assert key is not None  # inserted above, or by whoever won the race
    return key


def vapid(conn: Conn) -> Vapid | None:
    """The server's key, if made."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT private_pem, public_key FROM push_keys").fetchone()
    return Vapid(row[0], row[1]) if row else None


def subscribe(conn: Conn, person: str, endpoint: str, p256dh: str, auth: str,
              device: str | None, now: datetime) -> tuple[dict[str, Any], bool]:
    """Keep a device's subscription (the same endpoint again updates it); (row, created).
    A person keeps at most push.PER_PERSON: the oldest others go."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "INSERT INTO push_subscriptions (person_id, endpoint, p256dh, auth, device, created_at,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (endpoint) DO UPDATE SET person_id = EXCLUDED.person_id,"
        " p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, device = EXCLUDED.device,"
        " updated_at = EXCLUDED.updated_at"
        " RETURNING id, (xmax = 0)",  # xmax 0: a new row, not an update
        (person, endpoint, p256dh, auth, device, now, now)).fetchone()
    assert row is not None
    conn.execute(
        "DELETE FROM push_subscriptions WHERE person_id = %s AND id IN (SELECT id FROM"
        " push_subscriptions WHERE person_id = %s ORDER BY created_at DESC, id DESC"
        " OFFSET %s)", (person, person, push.PER_PERSON))
    return subscription(conn, person, int(row[0])) or {}, bool(row[1])


def subscription(conn: Conn, person: str, sid: int) -> dict[str, Any] | None:
    """One of the person's subscriptions, as columns by name."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE id = %s"
        " AND person_id = %s", (sid, person)).fetchone()


def subscriptions(conn: Conn, person: str) -> list[dict[str, Any]]:
    """The person's subscriptions, newest first."""
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE person_id = %s"
        " ORDER BY created_at DESC, id DESC", (person,)).fetchall()


def subscribed(conn: Conn, person: str) -> bool:
    """Whether the person has any push subscription."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT EXISTS (SELECT 1 FROM push_subscriptions WHERE person_id = %s)",
        (person,)).fetchone()
    return bool(row and row[0])


def unsubscribe(conn: Conn, person: str, sid: int) -> bool:
    """Remove one of the person's subscriptions; False when it is not theirs or gone."""
    return conn.execute("DELETE FROM push_subscriptions WHERE id = %s AND person_id = %s",
                        (sid, person)).rowcount > 0


def enqueue(conn: Conn, *, recipient: str, reason: str, subject: str, body: str, ref: str,
            at: datetime) -> int:
    """Queue one push row per subscription of the person; a repeated ref does nothing.
    Returns how many rows were new."""
    subs = conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, coalesce(device, ''), endpoint FROM push_subscriptions"
        " WHERE person_id = %s ORDER BY id", (recipient,)).fetchall()
    if not subs:
        return 0
    notice = _notice(conn, recipient, reason, subject, body, ref)
    doc = push.encode(push.payload(notice, at)).decode()
    new = 0
    for sid, device, endpoint in subs:
        new += conn.execute(
            "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
            " created_at, due_at, push_subscription) VALUES (%s, %s, 'push', %s, %s, %s, %s,"
            " %s, %s, %s) ON CONFLICT (ref, recipient, channel) DO NOTHING",
            (f"{ref}:push:{sid}", recipient, _address(device, endpoint), reason, subject,
             doc, at, at, sid)).rowcount
    return new


def _address(device: str, endpoint: str) -> str:
    """What the notification log shows as the address: the device and its push service
    (never the whole endpoint, which is the device's capability to be pushed to)."""
    host = endpoint.split("/")[2] if endpoint.count("/") >= 2 else endpoint
    return f"{device or 'device'} via {host}"


def _notice(conn: Conn, recipient: str, reason: str, subject: str, body: str,
            ref: str) -> push.Notice:
    """The notification with its incident, timeline entry and the person's live job."""
    m = _INCIDENT_REF.match(ref)
    if m is None:
        return push.Notice(reason, subject, body, ref)
    incident, event = int(m[1]), int(m[2]) if m[2] else None
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT (SELECT kind FROM incident_events WHERE id = %s),"
        " (SELECT id FROM jobs WHERE incident_id = %s AND technician_id = %s"
        "  ORDER BY id DESC LIMIT 1)", (event, incident, recipient)).fetchone()
    kind, job = (row[0], row[1]) if row else (None, None)
    return push.Notice(reason, subject, body, ref, kind, incident,
                       int(job) if job is not None else None)


@dataclass(frozen=True)
class Target:
    """Where one push row goes: the subscription as it is now."""

    id: int
    endpoint: str
    p256dh: str
    auth: str


def target(conn: Conn, sid: int | None) -> Target | None:
    """The subscription a push row is for; None once it was removed."""
    if sid is None:
        return None
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, endpoint, p256dh, auth FROM push_subscriptions WHERE id = %s",
        (sid,)).fetchone()
    return Target(*row) if row else None


def outcome(conn: Conn, sid: int, now: datetime, ok: bool, error: str | None,
            gone: bool) -> None:
    """Record an attempt on the subscription; a push service's 404 or 410 removes it."""
    if gone:
        conn.execute("DELETE FROM push_subscriptions WHERE id = %s", (sid,))
    elif ok:
        conn.execute("UPDATE push_subscriptions SET last_success_at = %s WHERE id = %s",
                     (now, sid))
    else:
        conn.execute("UPDATE push_subscriptions SET last_failure = %s, last_failure_at = %s"
                     " WHERE id = %s", (error, now, sid))
