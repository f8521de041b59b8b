"""Read-only HTTP route of the notification outbox: what was sent to whom, and how it went.

`GET /api/v1/notifications`: every message with its state (pending, sent, failed), its
attempts and each delivery's outcome, newest first. Managers and admins see all; a
technician sees only their own messages; customers are refused.

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from enum import StrEnum
from typing import Any

from fastapi import APIRouter, HTTPException

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import Cursor, Deps, Limit
from schemas.states import Role


class OutboxState(StrEnum):
    """A message's state; mirrored by the CHECK on outbox.state."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def _item(r: dict[str, Any], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """The public shape of one outbox row (the body stays out: it may be long)."""
    return {
        "id": r["id"], "recipient": r["recipient"], "channel": r["channel"],
        "address": r["address"], "reason": r["reason"], "subject": r["subject"],
        "ref": r["ref"], "state": r["state"], "attempts": r["attempts"],
        "created_at": views.ts(r["created_at"]),
        "next_attempt_at": views.ts(r["due_at"]) if r["state"] == OutboxState.PENDING else None,
        "done_at": views.ts(r["done_at"]), "last_error": r["last_error"],
        "deliveries": [{"attempt": d["attempt"], "at": views.ts(d["started_at"]),
                        "outcome": d["outcome"], "status_code": d["status_code"],
                        "error": d["error"], "duration_ms": round(d["duration_ms"], 1)}
                       for d in deliveries],
    }


def router(deps: Deps) -> APIRouter:
    """The route, with the app's own connection and principal dependencies."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/notifications", response_model=models.NotificationPage)
    def list_notifications(conn: db, who: who_dep, state: OutboxState | None = None,
                           recipient: str | None = None, reason: str | None = None,
                           ref: str | None = None,
                           limit: Limit = 50,
                           cursor: Cursor = None
                           ) -> dict[str, Any]:
        """Notifications newest first, each with its delivery attempts."""
        if who.role in (Role.MANAGER, Role.ADMIN):
            pass
        elif who.role is Role.TECHNICIAN and who.person:
            if recipient not in (None, who.person):
                raise HTTPException(403, "a technician sees only their own notifications; "
                                         "leave out recipient or use your own id")
            recipient = who.person
        else:
            raise HTTPException(403, "notifications are for staff: use a technician, "
                                     "manager or admin token")
        rows = conn.execute(
            "SELECT id, recipient, channel, address, reason, subject, ref, state, attempts,"
            " created_at, due_at, done_at, last_error FROM outbox"
            " WHERE (%(state)s::text IS NULL OR state = %(state)s)"
            " AND (%(recipient)s::text IS NULL OR recipient = %(recipient)s)"
            " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND (%(ref)s::text IS NULL OR ref = %(ref)s OR (channel = 'push' AND"
            "  left(ref, length(%(ref)s) + 6) = %(ref)s || ':push:'))"  # its devices' pushes
            " AND (%(cursor)s::bigint IS NULL OR id < %(cursor)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"state": state and state.value, "recipient": recipient, "reason": reason,
             "ref": ref, "cursor": cursor, "limit": limit + 1}).fetchall()
        page = rows[:limit]
        tries: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in page}
        for d in conn.execute(
                "SELECT outbox_id, attempt, started_at, outcome, status_code, error, duration_ms"
                " FROM deliveries WHERE outbox_id = ANY(%s) ORDER BY outbox_id, id",
                (list(tries),)).fetchall():
            tries[d["outbox_id"]].append(d)
        items = [_item(r, tries[r["id"]]) for r in page]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    return api
