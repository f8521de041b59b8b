"""A failed disk travels from a (simulated) server to a technician and a customer's credit.

Real Mosquitto, real PostgreSQL, collector and dispatcher as real processes, the HTTP API
over a real socket. One host's contract has a few seconds' SLA (the fix runs late, one
credit); the other's has ten minutes (the fix is on time, no credit).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import eventually, free_port, wait_port

FLEET = """
sites:
  - {id: lab1, name: "Lab 1", timezone: UTC, manager: t-maria}
technicians:
  - {id: t-maria, name: Maria, site: lab1, role: manager, skills: [], shift: "24h"}
  - {id: t-ana, name: Ana, site: lab1, role: technician, skills: [disk, fan, psu], shift: "24h"}
customers:
  - id: late-co
    name: Late Co
    contract: {sla_minutes: 0.05, credit_percent: 5, credit_period_minutes: 60,
               credit_cap_percent: 100}
    hosts:
      - {id: web-late, site: lab1, room: A, rack: r1, unit: 7, monthly_fee: 450.00,
         currency: USD}
  - id: fast-co
    name: Fast Co
    contract: {sla_minutes: 10}
    hosts:
      - {id: web-fast, site: lab1, room: A, rack: r2, unit: 3, monthly_fee: 300.00,
         currency: EUR}
"""


def hourglass(*args: str, env: dict[str, str]) -> list[str]:
    """The command line of one `hourglass` invocation in this interpreter."""
    return [sys.executable, "-m", "hourglass.cli", *args]


DISKS = ("web-late:disk:2s", "web-fast:disk:2s")


@pytest.fixture
def system(pg_url: str, mosquitto: str, tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Fleet loaded, collector + dispatcher + simulator running as processes."""
    fails = getattr(request, "param", DISKS)
    port = free_port()
    env = {**os.environ, "HOURGLASS_DATABASE_URL": pg_url, "HOURGLASS_MQTT_URL": mosquitto,
           "HOURGLASS_HTTP_ADDR": f"127.0.0.1:{port}"}
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    subprocess.run(hourglass("load", str(fleet), env=env), env=env, check=True)

    def token(*args: str) -> str:
        out = subprocess.run(hourglass("token", "create", *args, env=env), env=env, check=True,
                             capture_output=True, text=True).stdout
        return out.strip()

    tokens = {"tech": token("--role", "technician", "--person", "t-ana"),
              "late": token("--role", "customer", "--customer", "late-co"),
              "fast": token("--role", "customer", "--customer", "fast-co"),
              "admin": token("--role", "admin")}
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    for name, args in (("collector", ("collector", "run")), ("dispatcher", ("dispatcher", "run")),
                       ("simulate", ("simulate", "--fleet", str(fleet), "--interval", "1",
                                     *(a for f in fails for a in ("--fail", f)),
                                     "--state", str(tmp_path / "sim"), "--duration", "240"))):
        out = (logs / f"{name}.log").open("w")
        procs.append(subprocess.Popen(hourglass(*args, env=env), env=env, stdout=out,
                                      stderr=subprocess.STDOUT))
    try:
        wait_port(port, timeout=20)
        yield {"base": f"http://127.0.0.1:{port}", "tokens": tokens, "db": pg_url, "logs": logs}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_disk_failure_to_credit_end_to_end(system: dict[str, Any]) -> None:
    base, tok = system["base"], system["tokens"]
    tech = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok['tech']}"})
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok['admin']}"})

    def incident_of(host: str) -> dict[str, Any] | None:
        items = admin.get("/api/v1/incidents").json()["items"]
        return next((i for i in items if i["host"] == host and i["assignee"]), None)

    late = eventually(lambda: incident_of("web-late"), what="web-late's incident assigned")
    fast = eventually(lambda: incident_of("web-fast"), what="web-fast's incident assigned")
    for inc in (late, fast):
        assert inc["kind"] == "disk"
        assert inc["failure"] == "smart_failed"
        assert inc["component"].startswith("disk:")
        assert inc["slot"] == "sda"
        assert inc["assignee"] == "t-ana"
        assert inc["state"] == "dispatched"

    jobs = {j["incident"]["host"]: j for j in tech.get("/api/v1/jobs?mine=true").json()["items"]}
    assert set(jobs) == {"web-late", "web-fast"}

    def fix(job_id: int, serial: str) -> None:
        for action in ("acknowledge", "on-site"):
            key = {"Idempotency-Key": f"{job_id}-{action}"}
            r = tech.post(f"/api/v1/jobs/{job_id}/{action}", headers=key)
            assert r.status_code == 200, r.text
            again = tech.post(f"/api/v1/jobs/{job_id}/{action}", headers=key)  # a retried tap
            assert again.json() == r.json()
        r = tech.post(f"/api/v1/jobs/{job_id}/replaced", json={"serial": serial},
                      headers={"Idempotency-Key": f"{job_id}-replaced"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "replaced"
        reused = tech.post(f"/api/v1/jobs/{job_id}/replaced", json={"serial": "OTHER"},
                           headers={"Idempotency-Key": f"{job_id}-acknowledge"})
        assert reused.status_code == 422

    fix(jobs["web-fast"]["id"], "NEWFAST1")
    # The late host's SLA is 3 seconds: let its deadline pass before the technician fixes it.
    deadline = datetime.fromisoformat(late["deadline"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + 1))
    fix(jobs["web-late"]["id"], "NEWLATE1")

    def verified(inc_id: int) -> dict[str, Any] | None:
        body = admin.get(f"/api/v1/incidents/{inc_id}").json()
        return body if body["state"] == "verified" else None

    late_v = eventually(lambda: verified(late["id"]), what="web-late verified by telemetry")
    fast_v = eventually(lambda: verified(fast["id"]), what="web-fast verified by telemetry")

    kinds = [e["kind"] for e in late_v["timeline"]]
    # its short promise is foreseen broken at dispatch: the site manager is told at once
    foreseen = [e for e in late_v["timeline"] if e["kind"] == "escalated"
                and e["detail"].get("step") == "breach_foreseen"]
    assert len(foreseen) == 1, kinds
    assert kinds.index("escalated") == 2, kinds
    steps = [k for k in kinds if k != "escalated"]
    assert steps[:5] == ["detected", "dispatched", "acknowledged", "on_site", "replaced"]
    assert "verified" in kinds
    assert "credit_issued" in kinds
    verified_event = next(e for e in late_v["timeline"] if e["kind"] == "verified")
    assert verified_event["detail"]["serial"] == "NEWLATE1"
    assert late_v["credit"] == {"amount": "22.50", "currency": "USD", "percent": 5.0}
    assert fast_v["credit"] is None
    assert "credit_issued" not in [e["kind"] for e in fast_v["timeline"]]

    # Exactly one credit, of the right amount, and the customer sees only its own.
    with psycopg.connect(system["db"]) as conn:
        rows = conn.execute("SELECT incident_id, amount FROM credits").fetchall()
    assert rows == [(late["id"], Decimal("22.50"))]
    late_client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok['late']}"})
    mine = late_client.get("/api/v1/incidents").json()["items"]
    assert {i["host"] for i in mine} == {"web-late"}
    assert late_client.get(f"/api/v1/incidents/{fast['id']}").status_code == 404
    credits = late_client.get("/api/v1/credits").json()["items"]
    assert [c["amount"] for c in credits] == ["22.50"]

    # The customer closes, then answers the survey.
    assert late_client.post(f"/api/v1/incidents/{late['id']}/confirm").json()["state"] == "closed"
    r = late_client.post(f"/api/v1/incidents/{late['id']}/survey", json={"score": 6})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("system", [("web-late:fan:2s", "web-fast:power:2s")], indirect=True)
def test_fan_and_power_failures_close_the_loop(system: dict[str, Any]) -> None:
    base, tok = system["base"], system["tokens"]
    tech = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok['tech']}"})
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok['admin']}"})

    def job_for(host: str) -> dict[str, Any] | None:
        items = tech.get("/api/v1/jobs?mine=true").json()["items"]
        return next((j for j in items if j["incident"]["host"] == host), None)

    fan = eventually(lambda: job_for("web-late"), what="the fan job")
    psu = eventually(lambda: job_for("web-fast"), what="the power job")
    assert (fan["incident"]["component"], fan["incident"]["failure"]) == ("fan:fan1",
                                                                          "fan_stopped")
    assert (psu["incident"]["component"], psu["incident"]["failure"]) == ("psu:1", "psu_lost")
    deadline = datetime.fromisoformat(fan["incident"]["deadline"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds() + 1))
    for job, serial in ((fan, "FAN-NEW-1"), (psu, "PSU-NEW-1")):
        for action in ("acknowledge", "on-site"):
            assert tech.post(f"/api/v1/jobs/{job['id']}/{action}").status_code == 200
        r = tech.post(f"/api/v1/jobs/{job['id']}/replaced", json={"serial": serial})
        assert r.status_code == 200, r.text

    def verified(inc_id: int) -> dict[str, Any] | None:
        body = admin.get(f"/api/v1/incidents/{inc_id}").json()
        return body if body["state"] == "verified" else None

    late = eventually(lambda: verified(fan["incident"]["id"]), what="fan verified")
    on_time = eventually(lambda: verified(psu["incident"]["id"]), what="power verified")
    assert late["credit"] == {"amount": "22.50", "currency": "USD", "percent": 5.0}
    assert on_time["credit"] is None
