"""A small fleet on a real database, and the moves people and telemetry make, at explicit times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collector.model import Detection
from collector.store import Directory, HostInfo
from collector.store import open_incident as open_by_collector
from dispatcher.domain import policy
from dispatcher.http.routes import jobs, pauses
from dispatcher.service.engine import run_pass
from dispatcher.store.tokens import Principal
from schemas.states import Role

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
P = policy.TimerPolicy()


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def setup_fleet(conn: psycopg.Connection[Any], executive: bool = True) -> None:
    """Site iad1 (manager t-maria), three disk technicians round the clock, one customer."""
    conn.execute("INSERT INTO sites (id, name, timezone, manager_id)"
                 " VALUES ('iad1', 'Ashburn 1', 'UTC', 't-maria')")
    conn.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
                 " ('t-ana', 'Ana', 'iad1', 'technician', '{disk}'),"
                 " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}'),"
                 " ('t-cy', 'Cy', 'iad1', 'technician', '{disk}'),"
                 " ('t-maria', 'Maria', 'iad1', 'manager', '{}')")
    if executive:
        conn.execute("INSERT INTO technicians (id, name, site_id, role)"
                     " VALUES ('t-eve', 'Eve', 'iad1', 'executive')")
    conn.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
    conn.execute("INSERT INTO hosts (id, customer_id, site_id, monthly_fee)"
                 " VALUES ('web-01', 'acme', 'iad1', 450.00)")


def open_incident(conn: psycopg.Connection[Any], detected: datetime = T0,
                  sla_minutes: float = 60) -> int:
    """A failed disk in a slot of web-01, opened by the collector's own open_incident."""
    directory = Directory()
    directory.hosts["web-01"] = HostInfo("iad1", "acme", sla_minutes)
    serial = uuid.uuid4().hex
    found = open_by_collector(conn, directory, Detection(
        "web-01", f"disk:{serial[:8]}", "disk", "smart_failed", detected, "smart_failed",
        slot=f"s{serial[8:14]}", serial="OLD", evidence={"smart_status": "FAILED"}))
    assert found is not None
    return found


def tick(url: str, now: datetime, worker: str = "test") -> None:
    """One engine pass at `now`."""
    with psycopg.connect(url, autocommit=True) as conn:
        run_pass(conn, P, now, worker)


def live_job(conn: psycopg.Connection[Any], incident: int) -> tuple[int, str, str] | None:
    """(id, technician, state) of the incident's live job."""
    row = conn.execute("SELECT id, technician_id, state FROM jobs WHERE incident_id = %s AND"
                       " state IN ('dispatched', 'acknowledged', 'on_site', 'replaced')",
                       (incident,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def act(url: str, incident: int, action: str, now: datetime, **body: Any) -> bool:
    """The live job's technician performs an action at `now`; False when it cannot."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute("SELECT id, technician_id FROM jobs WHERE incident_id = %s AND state"
                           " IN ('dispatched', 'acknowledged', 'on_site', 'replaced')",
                           (incident,)).fetchone()
        if row is None:
            return False
        who = Principal(0, Role.TECHNICIAN, None, row["technician_id"])
        try:
            with conn.transaction():
                jobs.perform(conn, who, row["id"], jobs.ACTIONS[action], body, now)
        except Exception as exc:  # an HTTPException: the action does not apply now
            if getattr(exc, "status_code", None) is None:
                raise
            return False
    return True


def pause(url: str, incident: int, now: datetime,
          reason: str = "customer_denied_access") -> bool:
    """The customer pauses the clock at `now`; False when it cannot."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            with conn.transaction():
                pauses.pause(conn, incident, "customer:acme", reason, now)
        except pauses.PauseRefused:
            return False
    return True


def resume(url: str, incident: int, now: datetime) -> bool:
    """The customer resumes the clock at `now`; False when it cannot."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            with conn.transaction():
                pauses.resume(conn, incident, "customer:acme", now)
        except pauses.PauseRefused:
            return False
    return True


def heal(conn: psycopg.Connection[Any], incident: int, at_: datetime,
         serial: str = "NEW") -> None:
    """Telemetry reports a new disk healthy in the incident's slot at `at_`."""
    slot = conn.execute("SELECT slot FROM incidents WHERE id = %s", (incident,)).fetchone()
    assert slot is not None
    conn.execute("INSERT INTO components (host_id, id, kind, slot, serial, status, status_ts)"
                 " VALUES ('web-01', %s, 'disk', %s, %s, 'ok', %s)",
                 (f"disk:{serial}-{incident}", slot[0], f"{serial}-{incident}", at_))


def events(conn: psycopg.Connection[Any], incident: int, kind: str) -> list[dict[str, Any]]:
    """The detail of each event of one kind, oldest first, with its time."""
    return [{**r[1], "at": r[0]} for r in conn.execute(
        "SELECT at, detail FROM incident_events WHERE incident_id = %s AND kind = %s"
        " ORDER BY at, id", (incident, kind))]
