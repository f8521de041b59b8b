"""Cage access decisions: owns `cage_decisions`. The customer grants or denies our technician
access to its cage, per incident, where its contract says `cage_access: ask`.

What the technician, the manager and the customer see is one word (`status`): `not_needed`
(the contract lets us in), `asked` (no answer yet), `granted` or `denied`. Each decision is
also a timeline entry ('cage_access', with who and when); the clock's pause on a denial is
the caller's (dispatcher/http/routes/cage.py, through the pause routes' own functions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import tuple_row

from dispatcher.store import Conn, event

#: The words the API answers with (dispatcher/views.py's INCIDENT_COLUMNS computes them).
STATUSES = ("not_needed", "asked", "granted", "denied")


def rule_of(conn: Conn, incident: int) -> tuple[str, str | None] | None:
    """(the contract's rule, the current decision) of an incident, locked; None if absent."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT cu.cage_access, cd.decision FROM incidents i"
        " JOIN customers cu ON cu.id = i.customer_id"
        " LEFT JOIN cage_decisions cd ON cd.incident_id = i.id"
        " WHERE i.id = %s FOR UPDATE OF i", (incident,)).fetchone()
    return (str(row[0]), row[1]) if row else None


def decide(conn: Conn, incident: int, decision: str, actor: str, now: datetime) -> bool:
    """Record the customer's decision (in the caller's transaction) and its timeline entry;
    False when it was already the decision (a repeated tap changes nothing)."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "INSERT INTO cage_decisions (incident_id, decision, decided_by, decided_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (incident_id) DO UPDATE"
        " SET decision = EXCLUDED.decision, decided_by = EXCLUDED.decided_by,"
        " decided_at = EXCLUDED.decided_at WHERE cage_decisions.decision <> EXCLUDED.decision"
        " RETURNING incident_id", (incident, decision, actor, now)).fetchone()
    if row is None:
        return False
    event(conn, incident, now, actor, "cage_access", {"decision": decision, "by": actor})
    return True


def site_manager(conn: Conn, incident: int) -> tuple[str | None, dict[str, Any]]:
    """The incident's site manager and what a message about it needs."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT s.manager_id, i.host_id, i.component, i.site_id, i.deadline, h.room, h.rack"
        " FROM incidents i JOIN sites s ON s.id = i.site_id JOIN hosts h ON h.id = i.host_id"
        " WHERE i.id = %s", (incident,)).fetchone()
    if row is None:
        return None, {}
    return row[0], {"host": row[1], "component": row[2], "site": row[3], "deadline": row[4],
                    "room": row[5], "rack": row[6]}
