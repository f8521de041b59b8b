"""schemathesis against the OpenAPI document, on a real server with a seeded fleet: no 5xx
and no answer that breaks its documented schema, in an admin's and a customer's session
(the cookie, with our Origin on changes).

Ids are seeded from 1 up (the database is a fresh clone), so generated path ids reach real
incidents, jobs, claims and sessions instead of 404s alone. Each role's run is bounded by
--max-examples per operation and a deterministic seed.
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

from dispatcher.store import claims, tokens
from schemas.states import Role
from tests.dispatcher import permission_setups as s
from tests.web.conftest import Fleet, OpenIncident

EXAMPLES = 15  # per operation and role
# CPU-bound generated input like the property tests: scripts/test runs it beside the rest
pytestmark = pytest.mark.fuzz


@pytest.fixture
def seeded(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet, base_url: str,
           open_incident: OpenIncident) -> dict[str, str]:
    for n in range(12):
        open_incident("web-01" if n % 3 else "db-07", slot=f"s{n}",
                      state=("detected", "dispatched", "acknowledged", "on_site")[n % 4])
    now = datetime.now(UTC)
    for n in range(3):  # claims 1..3, so the claim steps reach past "no claim"
        claims.open_claim(db, "acme", None, f"support was slow, time {n}", "customer:acme", now)
    # one of each thing a path names, in the states its operations act on (the permission
    # matrix's own setups): paused, reviewed, verified, closed and credited incidents,
    # claims in every state, a facility incident, planned work, t-ana's passkey, a contract
    # that asks for cage access and one of acme's own contacts, planned work with acme's windows
    world = s.World(base_url, db, fleet, open_incident, s.Tracebacks())
    for setup in (s.paused, s.reviewed, s.verified, s.closed, s.credited, s.facility,
                  s.proactive, s.planned, s.ana_reachable, s.ana_passkey, s.cage_asked,
                  s.acme_contact,
                  *(s.claim(state) for state in ("plan_presented", "plan_accepted",
                                                 "plan_rejected", "notice_given"))):
        setup(world)
    # people's sessions, as the pages hold them (the cookie; changes carry our Origin)
    sessions: dict[str, str] = {}
    for role, customer in (("admin", None), ("customer", "acme")):
        _, sessions[role] = tokens.start_session(
            db, Role(role), customer, None, now, timedelta(hours=1), timedelta(hours=2),
            "schemathesis", "127.0.0.1", "ops@acme.example" if customer else None)
    return sessions


@pytest.mark.parametrize("role", ["admin", "customer"])
def test_no_server_error_and_no_answer_off_its_schema(base_url: str, seeded: dict[str, str],
                                                      role: str, tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is missing: it is in the dev extras (pip install -e '.[dev]')"
    run = subprocess.run(
        [st, "run", f"{base_url}/openapi.json", "-H", f"Cookie: hg_session={seeded[role]}",
         "-H", f"Origin: {base_url}",
         "--checks", "not_a_server_error,response_schema_conformance",
         # ending sessions would end the runs' own (test_signin.py tests those routes)
         "--exclude-path-regex", r"^/api/v1/sessions/.*revoke",
         "--max-examples", str(EXAMPLES), "--seed", "20261204", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240)
    out = run.stdout + run.stderr
    cases = re.search(r"(\d+) generated", out)
    print(f"schemathesis as {role}: {cases[1] if cases else '?'} cases")
    print(out[-3000:])
    assert run.returncode == 0, out[-6000:]
