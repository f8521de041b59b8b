"""schemathesis on the push and escalation operations as the people they are for (a
technician's and a manager's session: the cookie, with our Origin on changes), which the
suite-wide run (tests/web/test_api_fuzz.py, as an admin and a customer) meets only as 403s.
No 5xx and no answer off its documented schema.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.store import tokens
from schemas.states import Role
from tests.dispatcher import permission_setups as s
from tests.web.conftest import Fleet, OpenIncident

EXAMPLES = 25  # per operation and role: six operations
OPERATIONS = r"^/api/v1/(push/|incidents/\{incident_id\}/escalation/)"
pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def sessions(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet, base_url: str) -> dict[
        str, str]:
    """Incidents 1.. escalated to t-maria (so generated ids reach them), and the sessions."""
    now = datetime.now(UTC)
    out = {}
    for role, person in (("technician", "t-ana"), ("manager", "t-maria")):
        _, out[role] = tokens.start_session(db, Role(role), None, person, now,
                                            timedelta(hours=1), timedelta(hours=2),
                                            "schemathesis", "127.0.0.1", None)
    return out


@pytest.mark.parametrize("role", ["technician", "manager"])
def test_push_and_escalation_operations_hold_their_schema(
        base_url: str, db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet,
        open_incident: OpenIncident, sessions: dict[str, str], role: str,
        tmp_path: Path) -> None:
    world = s.World(base_url, db, fleet, open_incident, s.Tracebacks())
    for _ in range(4):
        s.escalated(world)
        s.ana_push_subscription(world)
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is missing: it is in the dev extras (pip install -e '.[dev]')"
    run = subprocess.run(
        [st, "run", f"{base_url}/openapi.json", "-H", f"Cookie: hg_session={sessions[role]}",
         "-H", f"Origin: {base_url}", "--include-path-regex", OPERATIONS,
         "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", str(EXAMPLES), "--seed", "20261207", "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = run.stdout + run.stderr
    cases = re.search(r"(\d+) generated", out)
    print(f"schemathesis as {role}: {cases[1] if cases else '?'} cases")
    print(out[-2500:])
    assert run.returncode == 0, out[-6000:]
