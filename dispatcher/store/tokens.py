"""Credentials: machine tokens and people's sessions, random secrets stored only as hashes.

Both are rows of api_tokens (kind 'token' or 'session'): a token lives until it expires
or is revoked; a session also ends when unused for its idle time. Each use is recorded to
the minute (last_used_at), written at most once a minute per credential.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from schemas.states import Role

PREFIX = "hg_"  # lets secret scanners and people recognise an Hourglass token
SESSION_PREFIX = "hgs_"  # a session cookie's value
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at's resolution: one write a minute at most


@dataclass(frozen=True)
class Principal:
    """Who is calling, as a token or a session says."""

    token_id: int  # the credential's id (a token's or a session's)
    role: Role
    customer: str | None
    person: str | None
    session: bool = False  # signed in by the session cookie, not a bearer token

    @property
    def actor(self) -> str:
        """How the caller appears in the audit and on timelines."""
        if self.role is Role.CUSTOMER:
            return f"customer:{self.customer}"
        return f"{self.role.value}:{self.person}" if self.person else self.role.value


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_scope(role: Role, customer: str | None, person: str | None) -> None:
    """Refuse a credential whose role lacks what it is scoped to."""
    if role is Role.CUSTOMER and not customer:
        raise ValueError("a customer token needs --customer ID")
    if role in (Role.TECHNICIAN, Role.MANAGER) and not person:
        raise ValueError(f"a {role} token needs --person ID (the technician's id in the fleet)")


def create(conn: psycopg.Connection[Any], role: Role, customer: str | None,
           person: str | None, expires_at: datetime | None = None) -> str:
    """Store a new machine token and return the secret (the only time it is seen)."""
    check_scope(role, customer, person)
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_tokens (token_hash, role, customer_id, person_id, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (digest(token), role.value, customer, person, expires_at))
    return token


def start_session(conn: psycopg.Connection[Any], role: Role, customer: str | None,
                  person: str | None, now: datetime, idle: timedelta, lifetime: timedelta,
                  device: str | None, client: str | None,
                  email: str | None = None) -> tuple[int, str]:
    """A new session (its id and the cookie's secret)."""
    check_scope(role, customer, person)
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "INSERT INTO api_tokens (token_hash, kind, role, customer_id, person_id, created_at,"
            " expires_at, idle_s, last_used_at, device, client, email)"
            " VALUES (%s, 'session', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (digest(secret), role.value, customer, person, now, now + lifetime,
             max(1, int(idle.total_seconds())), now, (device or "")[:300] or None,
             client, email)).fetchone()
    assert row is not None
    return int(row[0]), secret


def lookup(conn: psycopg.Connection[Any], secret: str, now: datetime,
           session: bool = False) -> Principal | None:
    """The principal behind a live token (or session), or None; records the use."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT id, role, customer_id, person_id, last_used_at FROM api_tokens"
            " WHERE token_hash = %s AND kind = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > %s)"
            " AND (idle_s IS NULL OR coalesce(last_used_at, created_at)"
            "      + make_interval(secs => idle_s + 60) > %s)",
            (digest(secret), "session" if session else "token", now, now)).fetchone()
        if row is None:
            return None
        if row[4] is None or now - row[4] >= TOUCH_EVERY:
            cur.execute("UPDATE api_tokens SET last_used_at = %s WHERE id = %s", (now, row[0]))
    return Principal(int(row[0]), Role(row[1]), row[2], row[3], session)


@dataclass(frozen=True)
class Credential:
    """A token or session as listed: never its secret."""

    id: int
    kind: str
    role: str
    customer: str | None
    person: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    device: str | None
    client: str | None
    idle_s: int | None
    email: str | None

    def live(self, now: datetime) -> bool:
        """Not revoked, not expired, not idle too long."""
        if self.revoked_at is not None or (self.expires_at and self.expires_at <= now):
            return False
        seen = self.last_used_at or self.created_at
        return self.idle_s is None or seen + timedelta(seconds=self.idle_s + 60) > now


def listed(conn: psycopg.Connection[Any], kind: str, person: str | None = None,
           customer: str | None = None) -> list[Credential]:
    """Tokens or sessions, oldest first, optionally one person's or one customer's."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT id, kind, role, customer_id, person_id, created_at, expires_at, last_used_at,"
            " revoked_at, device, client, idle_s, email FROM api_tokens WHERE kind = %s"
            " AND (%s::text IS NULL OR person_id = %s)"
            " AND (%s::text IS NULL OR customer_id = %s) ORDER BY id",
            (kind, person, person, customer, customer)).fetchall()
    return [Credential(*r) for r in rows]


def revoke(conn: psycopg.Connection[Any], credential: int, by: str, now: datetime,
           kind: str | None = None) -> bool:
    """Revoke one token or session; False when there is none live by that id."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "UPDATE api_tokens SET revoked_at = %s, revoked_by = %s WHERE id = %s"
            " AND revoked_at IS NULL AND (%s::text IS NULL OR kind = %s) RETURNING id",
            (now, by, credential, kind, kind)).fetchone()
    return row is not None


def revoke_sessions(conn: psycopg.Connection[Any], by: str, now: datetime,
                    person: str | None = None, customer: str | None = None) -> int:
    """End every live session of one person (or one customer's people): sign out everywhere."""
    if person is None and customer is None:
        raise ValueError("whose sessions? give a person or a customer")
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "UPDATE api_tokens SET revoked_at = %s, revoked_by = %s WHERE kind = 'session'"
            " AND revoked_at IS NULL AND (%s::text IS NULL OR person_id = %s)"
            " AND (%s::text IS NULL OR customer_id = %s) RETURNING id",
            (now, by, person, person, customer, customer)).fetchall()
    return len(rows)


def session_email(conn: psycopg.Connection[Any], token_id: int) -> str | None:
    """The address a customer's session signed in with (None for a machine token)."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT email FROM api_tokens WHERE id = %s", (token_id,)).fetchone()
    return str(row[0]) if row and row[0] else None
