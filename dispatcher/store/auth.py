"""Sign-in links (one-time codes), who may ask for one by email, and the audit of sign-ins.

A code is valid once, until its expiry; consuming it is one UPDATE ... WHERE used_at IS NULL
AND expires_at > now, so two taps on the same link (or a scanner and a person) cannot both
sign in. Every sign-in, sign-out, revocation and refusal goes to auth_events.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from dispatcher.store import tokens
from schemas.states import Role

CODE_BYTES = 24  # 192 bits: a code is a secret for its few minutes


@dataclass(frozen=True)
class Person:
    """Whom a sign-in link signs in."""

    role: Role
    customer: str | None
    person: str | None
    email: str | None = None

    @property
    def actor(self) -> str:
        """How the person appears in the audit."""
        if self.role is Role.CUSTOMER:
            return f"customer:{self.customer}" + (f" ({self.email})" if self.email else "")
        return f"{self.role.value}:{self.person}"


class CodeRefused(Exception):
    """A sign-in code that cannot be used, and what to do."""


def person_role(conn: psycopg.Connection[Any], person: str) -> Person:
    """A technician, manager or executive of the fleet file as a sign-in's principal."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT role FROM technicians WHERE id = %s", (person,)).fetchone()
    if row is None:
        raise ValueError(f"no person {person!r} in the fleet; load the fleet file first")
    role = Role.TECHNICIAN if row[0] == "technician" else Role.MANAGER  # executives: manager
    return Person(role, None, person)


def create_code(conn: psycopg.Connection[Any], who: Person, ttl: timedelta, by: str,
                now: datetime) -> str:
    """A new one-time code for `who`, valid for `ttl`; a customer's email is remembered."""
    tokens.check_scope(who.role, who.customer, who.person)
    code = secrets.token_urlsafe(CODE_BYTES)
    conn.execute(
        "INSERT INTO signin_codes (code_hash, role, customer_id, person_id, email, created_at,"
        " created_by, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (tokens.digest(code), who.role.value, who.customer, who.person, who.email, now, by,
         now + ttl))
    if who.role is Role.CUSTOMER and who.email:
        conn.execute("INSERT INTO customer_users (customer_id, email, added_at)"
                     " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     (who.customer, who.email.strip().lower(), now))
    return code


def _refusal(row: tuple[Any, ...] | None, now: datetime) -> str | None:
    if row is None:
        return "this sign-in link is not valid: ask for a new one on the sign-in page"
    if row[5] is not None:
        return "this sign-in link was already used: ask for a new one on the sign-in page"
    if row[4] <= now:
        return "this sign-in link has expired: ask for a new one on the sign-in page"
    return None


def peek_code(conn: psycopg.Connection[Any], code: str, now: datetime) -> Person:
    """Whom a code would sign in, without using it (the page a GET shows)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT role, customer_id, person_id, email, expires_at, used_at FROM signin_codes"
            " WHERE code_hash = %s", (tokens.digest(code),)).fetchone()
    why = _refusal(row, now)
    if why:
        raise CodeRefused(why)
    assert row is not None
    return Person(Role(row[0]), row[1], row[2], row[3])


def consume_code(conn: psycopg.Connection[Any], code: str, now: datetime) -> tuple[int, Person]:
    """Use a code once (the caller's transaction starts the session); its id and person."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "UPDATE signin_codes SET used_at = %s WHERE code_hash = %s AND used_at IS NULL"
            " AND expires_at > %s RETURNING id, role, customer_id, person_id, email",
            (now, tokens.digest(code), now)).fetchone()
        if row is None:
            why = _refusal(cur.execute(
                "SELECT role, customer_id, person_id, email, expires_at, used_at"
                " FROM signin_codes WHERE code_hash = %s", (tokens.digest(code),)).fetchone(),
                now)
            raise CodeRefused(why or "this sign-in link was just used: ask for a new one")
    return int(row[0]), Person(Role(row[1]), row[2], row[3], row[4])


def link_session(conn: psycopg.Connection[Any], code_id: int, session: int) -> None:
    """Remember which session a code started."""
    conn.execute("UPDATE signin_codes SET session_id = %s WHERE id = %s", (session, code_id))


def people_for_email(conn: psycopg.Connection[Any], email: str) -> list[Person]:
    """Everyone an address signs in as: staff by their email contact, customers' people."""
    address = email.strip().lower()
    with conn.cursor(row_factory=tuple_row) as cur:
        staff = cur.execute(
            "SELECT t.id, t.role FROM contacts c JOIN technicians t ON t.id = c.person_id"
            " WHERE c.channel = 'email' AND lower(c.address) = %s ORDER BY t.id",
            (address,)).fetchall()
        customers = cur.execute(
            "SELECT customer_id FROM customer_users WHERE lower(email) = %s ORDER BY 1",
            (address,)).fetchall()
    return ([Person(Role.TECHNICIAN if r[1] == "technician" else Role.MANAGER, None, r[0],
                    address) for r in staff]
            + [Person(Role.CUSTOMER, r[0], None, address) for r in customers])


def audit(conn: psycopg.Connection[Any], kind: str, now: datetime, *,
          credential: int | None = None, who: str | None = None, client: str | None = None,
          **detail: Any) -> None:
    """Record one sign-in event."""
    conn.execute("INSERT INTO auth_events (at, kind, credential_id, who, client, detail)"
                 " VALUES (%s, %s, %s, %s, %s, %s)",
                 (now, kind, credential, who, client, Jsonb(detail)))


@dataclass(frozen=True)
class AuthEvent:
    """One audited event."""

    id: int
    at: datetime
    kind: str
    credential: int | None
    who: str | None
    client: str | None
    detail: dict[str, Any]


def events(conn: psycopg.Connection[Any], limit: int, cursor: int | None,
           kind: str | None = None) -> list[AuthEvent]:
    """Audited events, newest first."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT id, at, kind, credential_id, who, client, detail FROM auth_events"
            " WHERE (%s::bigint IS NULL OR id < %s) AND (%s::text IS NULL OR kind = %s)"
            " ORDER BY id DESC LIMIT %s", (cursor, cursor, kind, kind, limit)).fetchall()
    return [AuthEvent(*r) for r in rows]
