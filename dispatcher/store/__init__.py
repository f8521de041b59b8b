"""Shared database adapters of the dispatcher: the timeline, wake-ups, people as domain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.types.json import Jsonb

from dispatcher.domain import assign, incident
from schemas.wake import CHANNEL, wake

__all__ = ["CHANNEL", "LIVE_JOB", "LIVE_JOB_STATES", "OPEN_SQL", "Conn", "event", "executives",
           "technicians", "tz", "wake"]

Conn = psycopg.Connection[Any]
LIVE_JOB_STATES: frozenset[str] = frozenset(s.value for s in incident.LIVE_JOB)
LIVE_JOB = incident.sql_list(incident.LIVE_JOB)  # the same, as SQL
OPEN_SQL = incident.sql_list(incident.OPEN)  # open incidents' states, as SQL


def event(conn: Conn, incident: int, at: datetime, actor: str, kind: str,
          detail: dict[str, Any]) -> None:
    """Append one entry to an incident's timeline."""
    conn.execute(
        "INSERT INTO incident_events (incident_id, at, actor, kind, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (incident, at, actor, kind, Jsonb(detail)),
    )


def tz(name: str) -> ZoneInfo:
    """A site's time zone; UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


_PEOPLE = (
    "SELECT t.id, t.site_id, t.role, t.skills, t.shift_start,"
    " least(t.shift_end, '23:59:59.999999'::time),"  # psycopg cannot read 24:00
    " (SELECT count(*) FROM jobs j WHERE j.technician_id = t.id AND j.state IN " + LIVE_JOB + "),"
    " s.timezone FROM technicians t JOIN sites s ON s.id = t.site_id WHERE t.active"
)


def _person(r: Any) -> tuple[assign.Technician, ZoneInfo]:
    return assign.Technician(r[0], r[1], r[2], frozenset(r[3]), r[4], r[5], r[6]), tz(r[7])


def technicians(conn: Conn, site: str) -> list[assign.Technician]:
    """The active people of a site, with their open job counts."""
    return [_person(r)[0] for r in conn.execute(_PEOPLE + " AND t.site_id = %s", (site,))]


def executives(conn: Conn) -> list[tuple[assign.Technician, ZoneInfo]]:
    """Every active executive in the fleet, with their site's time zone."""
    return [_person(r) for r in conn.execute(_PEOPLE + " AND t.role = 'executive'")]
