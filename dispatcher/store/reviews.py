"""Breach reviews in the database: what went wrong on a breached incident, and who fixes what.

Only a breached incident (verified after its deadline, or still open past it) gets a review;
writing or editing one is an incident event, so the customer's timeline shows it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from dispatcher import views
from dispatcher.domain import reviews as rules
from dispatcher.domain.claims import Item as Item  # one action item for reviews and plans
from dispatcher.store import Conn, event
from dispatcher.store.claims import is_person

MAX_ITEMS = 50  # a review with more actions than this is a list nobody will finish


class ReviewRefused(Exception):
    """A review write that cannot happen: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _q(conn: Conn, sql: str, args: Sequence[Any]) -> Any:
    return conn.cursor(row_factory=dict_row).execute(sql, args)


def get(conn: Conn, incident: int) -> dict[str, Any] | None:
    """The incident's review in its public shape, or None."""
    row = _q(conn, "SELECT cause, author, created_at, updated_at FROM reviews"
                   " WHERE incident_id = %s", (incident,)).fetchone()
    if row is None:
        return None
    items = _q(conn, "SELECT n, text, owner, due_at, done_at FROM review_items"
                     " WHERE incident_id = %s ORDER BY n", (incident,)).fetchall()
    return views.review(row, items)


def _breached_incident(conn: Conn, incident: int, now: datetime) -> None:
    """Lock the incident; refuse unless it broke the promise."""
    row = _q(conn, "SELECT deadline, verified_at FROM incidents WHERE id = %s FOR UPDATE",
             (incident,)).fetchone()
    if row is None:
        raise ReviewRefused(404, f"no incident {incident}")
    if not rules.breached(row["deadline"], row["verified_at"], now):
        raise ReviewRefused(409, f"incident {incident} kept the promise (deadline "
                                 f"{views.ts(row['deadline'])}): only a breached incident gets "
                                 "a review")


def _items(conn: Conn, incident: int, items: Sequence[Item]) -> None:
    """Replace the review's items after checking their owners."""
    if len(items) > MAX_ITEMS:
        raise ReviewRefused(422, f"a review has at most {MAX_ITEMS} action items")
    unknown = sorted({i.owner for i in items if not is_person(conn, i.owner)})
    if unknown:
        raise ReviewRefused(422, f"unknown owner(s) {unknown}: an owner is a person id from "
                                 "the fleet file (a technician, manager, executive or account "
                                 "person)")
    conn.execute("DELETE FROM review_items WHERE incident_id = %s", (incident,))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO review_items (incident_id, n, text, owner, due_at, done_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)",
                        [(incident, n, i.text, i.owner, i.due_at, i.done_at)
                         for n, i in enumerate(items, 1)])


def create(conn: Conn, incident: int, cause: str, items: Sequence[Item], author: str,
           now: datetime) -> None:
    """Write the review of a breached incident (in the caller's transaction)."""
    _breached_incident(conn, incident, now)
    made = _q(conn, "INSERT INTO reviews (incident_id, cause, author, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (incident_id) DO NOTHING"
                    " RETURNING incident_id", (incident, cause, author, now, now)).fetchone()
    if made is None:
        raise ReviewRefused(409, f"incident {incident} already has a review: edit it with "
                                 "PATCH .../review")
    _items(conn, incident, items)
    event(conn, incident, now, author, "review_published", {"items": len(items)})


def edit(conn: Conn, incident: int, cause: str | None, items: Sequence[Item] | None,
         author: str, now: datetime) -> None:
    """Change the cause and/or replace the items (in the caller's transaction)."""
    got = _q(conn, "UPDATE reviews SET cause = coalesce(%s, cause), updated_at = %s"
                   " WHERE incident_id = %s RETURNING incident_id",
             (cause, now, incident)).fetchone()
    if got is None:
        raise ReviewRefused(404, f"incident {incident} has no review yet: write one with "
                                 "POST .../review")
    if items is not None:
        _items(conn, incident, items)
    event(conn, incident, now, author, "review_updated",
          {"cause": cause is not None, "items": None if items is None else len(items)})


def overdue(conn: Conn, now: datetime, due: timedelta = rules.REVIEW_DUE,
            limit: int = 200) -> list[dict[str, Any]]:
    """Breached incidents still without a review `due` after their deadline, oldest first."""
    rows = _q(conn, "SELECT i.id, i.site_id, i.customer_id, i.deadline, i.verified_at"
                    " FROM incidents i WHERE i.deadline <= %s AND NOT EXISTS"
                    " (SELECT 1 FROM reviews r WHERE r.incident_id = i.id)"
                    " AND (i.verified_at IS NULL OR i.verified_at > i.deadline)"
                    " ORDER BY i.deadline LIMIT %s", (now - due, limit)).fetchall()
    return [{"incident": r["id"], "site": r["site_id"], "customer": r["customer_id"],
             "deadline": views.ts(r["deadline"]), "verified_at": views.ts(r["verified_at"])}
            for r in rows if rules.review_overdue(r["deadline"], r["verified_at"], False, now, due)]
