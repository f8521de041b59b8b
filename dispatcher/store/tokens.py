"""API tokens: random secrets shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from schemas.states import Role

PREFIX = "hg_"  # lets secret scanners and people recognise an Hourglass token


@dataclass(frozen=True)
class Principal:
    """Who is calling, as a token says."""

    token_id: int
    role: Role
    customer: str | None
    person: str | None


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: psycopg.Connection[tuple[Any, ...]], role: Role, customer: str | None,
           person: str | None) -> str:
    """Store a new token and return the secret (the only time it is seen)."""
    if role is Role.CUSTOMER and not customer:
        raise ValueError("a customer token needs --customer ID")
    if role in (Role.TECHNICIAN, Role.MANAGER) and not person:
        raise ValueError(f"a {role} token needs --person ID (the technician's id in the fleet)")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_tokens (token_hash, role, customer_id, person_id)"
        " VALUES (%s, %s, %s, %s)", (digest(token), role.value, customer, person))
    return token


def lookup(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """The principal behind a token, or None."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT id, role, customer_id, person_id FROM api_tokens WHERE token_hash = %s",
            (digest(token),)).fetchone()
    if row is None:
        return None
    return Principal(int(row[0]), Role(row[1]), row[2], row[3])
