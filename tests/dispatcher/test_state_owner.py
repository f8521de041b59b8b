"""One owner for the incident's and the job's state: dispatcher/store/incidents.py.

Read from the source: no other module writes the state of an incident or a job, and the
states in schemas/states.py are the ones the database's CHECK constraints allow.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.domain.incident import Event
from dispatcher.store import incidents
from schemas.states import IncidentState, JobState
from tests.dispatcher.world import T0, open_incident, setup_fleet

ROOT = Path(__file__).resolve().parents[2]
OWNER = Path("dispatcher/store/incidents.py")
WRITES = re.compile(r"UPDATE\s+(incidents|jobs)\s+SET\s+(\w+\s*=\s*[^,]*,\s*)*state\s*=|"
                    r"INSERT\s+INTO\s+jobs\b", re.IGNORECASE)


def _strings(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_only_the_owner_writes_incident_or_job_state() -> None:
    writers = sorted(str(f.relative_to(ROOT)) for root in ("dispatcher", "collector")
                     for f in (ROOT / root).rglob("*.py")
                     if any(WRITES.search(s) for s in _strings(f)))
    assert writers == [str(OWNER)], (
        "incident and job state change only in dispatcher/store/incidents.py (through the "
        "transition table in dispatcher/domain/incident.py); move these writes there: "
        f"{[w for w in writers if w != str(OWNER)]}")


def _check(conn: psycopg.Connection[Any], table: str) -> set[str]:
    row = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t"
        " ON t.oid = c.conrelid WHERE t.relname = %s AND c.contype = 'c'"
        " AND pg_get_constraintdef(c.oid) LIKE '%%state%%'", (table,)).fetchone()
    assert row is not None, f"{table}.state has no CHECK constraint"
    return set(re.findall(r"'(\w+)'::text", row[0]))


def test_the_states_are_the_ones_the_database_allows(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert _check(conn, "incidents") == {s.value for s in IncidentState}
        assert _check(conn, "jobs") == {s.value for s in JobState}


def test_the_owner_refuses_a_transition_and_changes_nothing(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        setup_fleet(conn)
        i = open_incident(conn)
        conn.commit()
        with pytest.raises(incidents.Refused, match="'detected' cannot confirm"):
            incidents.close(conn, i, T0, T0, "customer:acme", Event.CONFIRM, {})
        conn.rollback()
        row = conn.execute("SELECT state, closed_at FROM incidents WHERE id = %s",
                           (i,)).fetchone()
        assert row == ("detected", None)
        job = incidents.dispatch(conn, i, "t-ana", T0, {"technician": "t-ana"})
        conn.commit()
        kinds = [r[0] for r in conn.execute(
            "SELECT kind FROM incident_events WHERE incident_id = %s ORDER BY id", (i,))]
        assert kinds == ["detected", "dispatched"]  # the timeline entry came with the change
        assert conn.execute("SELECT state FROM jobs WHERE id = %s", (job,)).fetchone() == (
            "dispatched",)
