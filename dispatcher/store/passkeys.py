"""Passkeys (WebAuthn credentials of staff) and the challenges of their ceremonies.

A challenge is handed out with a ceremony's options and taken back once: one UPDATE ...
WHERE used_at IS NULL AND expires_at > now, so a captured answer cannot be replayed and two
answers to one challenge cannot both succeed. A passkey's sign count only moves forward
(`record_use`), so an authenticator that was cloned shows up as a count that went back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

CHALLENGE_BYTES = 32  # 256 bits: WebAuthn asks for at least 16 random bytes
CHALLENGE_LIFE = timedelta(minutes=5)  # longer than the browser's 60 s prompt, short for a thief
PURPOSES = ("register", "signin")  # mirrored by the CHECK in schemas/sql/022_passkeys.sql
#: Unanswered challenges one client may hold at once. Anyone may start a passkey sign-in, so
#: without a cap one client could fill the table; 50 in five minutes leaves room for a site's
#: whole shift signing in from behind one NAT address.
OPEN_PER_CLIENT = 50


@dataclass(frozen=True)
class Passkey:
    """One registered passkey, as stored."""

    id: int
    person: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    name: str
    created_at: datetime
    last_used_at: datetime | None


_COLUMNS = ("id, person_id, credential_id, public_key, sign_count, transports, name,"
            " created_at, last_used_at")


def new_challenge(conn: psycopg.Connection[Any], purpose: str, person: str | None,
                  client: str, now: datetime) -> bytes | None:
    """A fresh challenge for one ceremony, or None when this client holds too many open
    (OPEN_PER_CLIENT); expired ones are cleared on the way."""
    if purpose not in PURPOSES:
        raise ValueError(f"a challenge is for one of {PURPOSES}, not {purpose!r}")
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    conn.execute("DELETE FROM passkey_challenges WHERE expires_at < %s", (now,))
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "INSERT INTO passkey_challenges (challenge, purpose, person_id, client, created_at,"
            " expires_at) SELECT %s, %s, %s, %s, %s, %s WHERE (SELECT count(*) FROM"
            " passkey_challenges WHERE client = %s AND used_at IS NULL AND expires_at > %s) < %s"
            " RETURNING 1",
            (challenge, purpose, person, client, now, now + CHALLENGE_LIFE, client, now,
             OPEN_PER_CLIENT)).fetchone()
    return challenge if row else None


def take_challenge(conn: psycopg.Connection[Any], challenge: bytes, purpose: str,
                   person: str | None, now: datetime) -> bool:
    """Use a challenge once: False when it is unknown, used, expired, or someone else's."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "UPDATE passkey_challenges SET used_at = %s WHERE challenge = %s AND purpose = %s"
            " AND used_at IS NULL AND expires_at > %s"
            " AND person_id IS NOT DISTINCT FROM %s RETURNING 1",
            (now, challenge, purpose, now, person)).fetchone()
    return row is not None


def add(conn: psycopg.Connection[Any], person: str, credential_id: bytes, public_key: bytes,
        sign_count: int, transports: list[str], name: str, now: datetime) -> int | None:
    """Store a verified new passkey; None when that credential is registered already."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "INSERT INTO passkeys (person_id, credential_id, public_key, sign_count, transports,"
            " name, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (credential_id) DO NOTHING RETURNING id",
            (person, credential_id, public_key, sign_count, transports, name, now)).fetchone()
    return int(row[0]) if row else None


def by_credential(conn: psycopg.Connection[Any], credential_id: bytes) -> Passkey | None:
    """The passkey an assertion names, if it is registered."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM passkeys WHERE credential_id = %s",
                          (credential_id,)).fetchone()
    return Passkey(*row) if row else None


def of_person(conn: psycopg.Connection[Any], person: str) -> list[Passkey]:
    """One person's passkeys, oldest first."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM passkeys WHERE person_id = %s ORDER BY id",
                           (person,)).fetchall()
    return [Passkey(*r) for r in rows]


def record_use(conn: psycopg.Connection[Any], passkey: int, expected_count: int,
               new_count: int, now: datetime) -> bool:
    """Move a passkey's sign count forward after a verified sign-in; False when another
    sign-in moved it first (the count this one was checked against is stale)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "UPDATE passkeys SET sign_count = %s, last_used_at = %s WHERE id = %s"
            " AND sign_count = %s RETURNING 1",
            (new_count, now, passkey, expected_count)).fetchone()
    return row is not None


def remove(conn: psycopg.Connection[Any], passkey: int, person: str) -> str | None:
    """Remove one of a person's passkeys; its name, or None when they have no such one."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("DELETE FROM passkeys WHERE id = %s AND person_id = %s RETURNING name",
                          (passkey, person)).fetchone()
    return str(row[0]) if row else None
