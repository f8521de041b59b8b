"""Proactive contact and claims told to the customer: the fleet file's maintenance windows,
the planning pass's slot, timeline and messages (exactly once, read from the outbox), the
customer's accept / move / decline, and claim steps told to the customer. Real PostgreSQL
and a real HTTP server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from dispatcher.domain import windows
from dispatcher.domain.policy import TimerPolicy
from dispatcher.service import engine, proactive
from dispatcher.store import claims, tokens
from hourglass.cli import main
from schemas.states import Role
from tests.web.conftest import Fleet

Conn = psycopg.Connection[tuple[Any, ...]]
BERLIN = [{"days": ["tue", "thu"], "start": "02:00", "end": "05:00",
           "timezone": "Europe/Berlin"}]


@pytest.fixture(scope="module")
def people(db: Conn, fleet: Fleet) -> Fleet:
    """Acme's people: a signed-in address, an account manager; reachable staff; a spare."""
    db.execute("INSERT INTO contacts (person_id, channel, address, customer_id) VALUES"
               " ('customer:acme:email:ops@acme.example', 'email', 'ops@acme.example', 'acme'),"
               " ('customer:globex:email:it@globex.example', 'email', 'it@globex.example',"
               " 'globex')")  # the customers' own contacts, as /status adds them
    db.execute("INSERT INTO account_people VALUES ('am-lee', 'Lee')")
    db.execute("UPDATE customers SET account_manager = 'am-lee' WHERE id = 'acme'")
    db.execute("INSERT INTO technicians (id, name, site_id, role) VALUES"
               " ('t-exec', 'Eve', 'iad1', 'executive')")
    db.execute("INSERT INTO contacts VALUES ('am-lee', 'email', 'lee@example.net'),"
               " ('t-maria', 'email', 'maria@example.net'), ('t-ana', 'email', 'ana@example.net'),"
               " ('t-exec', 'email', 'eve@example.net')")
    db.execute("INSERT INTO spares (site_id, part, kind, count)"
               " VALUES ('iad1', 'ST8000', 'disk', 6)")  # one per planned job, one kept
    db.execute("INSERT INTO maintenance_windows (customer_id, windows, updated_at, updated_by)"
               " VALUES ('acme', %s, now(), 'test')", (Jsonb(BERLIN),))
    return fleet


def predict(db: Conn, detected: datetime) -> int:
    """A prediction on web-01 as the collector opens it: reallocated sectors 0 -> 8."""
    ev = {"attrs": {"smart.attr_5_raw": {"baseline": 0, "value": 8}}, "seq": 7}
    row = db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen, evidence, last_evidence) VALUES ('web-01', 'iad1',"
        " 'acme', %s, 'disk', 'smart_counter_rising', 'smart_baseline', 'sdb', %s, %s, %s, %s)"
        " RETURNING id", (f"disk:{uuid.uuid4().hex[:8]}", detected - timedelta(hours=6),
                         detected, Jsonb(ev), Jsonb(ev))).fetchone()
    assert row is not None
    return int(row[0])


def outbox(db: Conn, ref_like: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in db.execute(
        "SELECT recipient, reason FROM outbox WHERE ref LIKE %s ORDER BY recipient",
        (ref_like,))]


def plan_one(db: Conn, people: Fleet, now: datetime) -> tuple[int, int]:
    pid = predict(db, now)
    with psycopg.connect(db.info.dsn) as conn:
        proactive.plan(conn, now)
        proactive.plan(conn, now + timedelta(minutes=1))  # a second pass plans nothing more
    row = db.execute("SELECT id FROM proactive_jobs WHERE prediction_id = %s",
                     (pid,)).fetchone()
    assert row is not None
    return pid, int(row[0])


def call(base_url: str, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, base_url + path, headers={"Authorization": f"Bearer {token}"},
                         **kw)


def test_a_prediction_is_planned_in_the_window_and_told_once(db: Conn, people: Fleet,
                                                             base_url: str) -> None:
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)  # a Monday; Tuesday 02:00 CET is 16 h away
    pid, job = plan_one(db, people, now)
    slot = db.execute("SELECT slot_start, slot_end, spare_part FROM proactive_jobs"
                      " WHERE id = %s", (job,)).fetchone()
    assert slot == (datetime(2026, 12, 10, 1, tzinfo=UTC), datetime(2026, 12, 10, 2, tzinfo=UTC),
                    "ST8000")  # Thursday 02:00 CET: the first window start past the 24 h lead
    assert outbox(db, f"prediction-{pid}-told") == [
        ("am-lee", "proactive_prediction"), ("customer:acme:email:ops@acme.example",
                                             "proactive_prediction")]
    body = db.execute("SELECT body FROM outbox WHERE ref = %s AND recipient = 'am-lee'",
                      (f"prediction-{pid}-told",)).fetchone()
    assert body is not None
    assert "smart.attr_5_raw (reallocated sectors) rose from 0 to 8" in body[0]
    assert "2026-12-10 01:00Z to 2026-12-10 02:00Z" in body[0]
    assert "spare ST8000 is reserved" in body[0]
    got = call(base_url, people.acme, "GET", f"/api/v1/planned-work/{job}").json()
    assert [e["kind"] for e in got["timeline"]] == ["predicted", "planned", "told"]
    assert got["timeline"][2]["detail"]["to"] == ["customer:acme:email:ops@acme.example",
                                                  "am-lee"]
    assert got["slot_start"] == "2026-12-10T01:00:00Z"
    assert got["plan_state"] == "proposed"
    assert call(base_url, people.globex, "GET", f"/api/v1/planned-work/{job}").status_code == 404


class Crash(Exception):
    """The process dying between planning and commit."""


def test_a_crash_before_commit_plans_and_tells_nothing(db: Conn, people: Fleet) -> None:
    now = datetime.now(UTC)
    pid = predict(db, now)
    def plan_then_crash() -> None:
        with psycopg.connect(db.info.dsn) as conn, conn.transaction():
            assert proactive.plan(conn, now) == 1
            raise Crash

    with pytest.raises(Crash):
        plan_then_crash()
    assert db.execute("SELECT count(*) FROM proactive_jobs WHERE prediction_id = %s",
                      (pid,)).fetchone() == (0,)
    assert outbox(db, f"prediction-{pid}-told") == []
    with psycopg.connect(db.info.dsn) as conn:  # the next pass plans it and tells, once
        assert proactive.plan(conn, now) == 1
    assert len(outbox(db, f"prediction-{pid}-told")) == 2


def test_move_accept_and_decline_tell_the_account_team_the_site_and_the_technician(
        db: Conn, people: Fleet, base_url: str) -> None:
    now = datetime.now(UTC)
    _, job = plan_one(db, people, now)
    ok = windows.choices(windows.parse_windows(BERLIN), now)[3]  # not the planned one
    r = call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/move",
             json={"start": ok.start.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["slot_start"] == ok.start.isoformat().replace("+00:00", "Z")
    bad = call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/move",
               json={"start": (ok.start + timedelta(hours=2, minutes=30)).isoformat()})
    assert bad.status_code == 422
    assert "not inside one of your maintenance windows" in bad.json()["detail"]
    assert call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/accept"
                ).status_code == 200
    assert call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/accept"
                ).status_code == 200  # a repeated tap tells nobody again
    told = [(r, why) for r, why in outbox(db, f"proactive-{job}-event-%")]
    assert sorted(told) == sorted([(p, f"proactive_plan_{s}") for s in ("moved", "accepted")
                                   for p in ("am-lee", "t-ana", "t-maria")])
    assert call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/decline",
                json={"reason": "freeze until January"}).status_code == 200
    assert db.execute("SELECT state FROM spare_reservations WHERE proactive_job_id = %s",
                      (job,)).fetchone() == ("released",)
    assert db.execute("SELECT state, plan_state FROM proactive_jobs WHERE id = %s",
                      (job,)).fetchone() == ("dismissed", "declined")
    kinds = [e["kind"] for e in call(base_url, people.acme, "GET",
                                     f"/api/v1/planned-work/{job}").json()["timeline"]]
    assert kinds[3:] == ["plan_moved", "told", "plan_accepted", "told", "plan_declined", "told"]
    again = call(base_url, people.acme, "POST", f"/api/v1/planned-work/{job}/accept")
    assert again.status_code == 409
    assert "already dismissed" in again.json()["detail"]


def test_windows_are_validated_on_the_server(db: Conn, people: Fleet, base_url: str) -> None:
    bad = call(base_url, people.globex, "PUT", "/api/v1/maintenance-windows",
               json={"windows": [{"days": ["tue"], "start": "25:00", "end": "05:00",
                                  "timezone": "UTC"}]})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("windows[0].start: no such time of day")
    good = call(base_url, people.globex, "PUT", "/api/v1/maintenance-windows",
                json={"windows": [{"days": ["saturday"], "start": "22:00", "end": "01:00",
                                   "timezone": "America/New_York"}]})
    assert good.status_code == 200
    assert good.json()["windows"] == [{"days": ["sat"], "start": "22:00", "end": "01:00",
                                       "timezone": "America/New_York"}]
    assert call(base_url, people.globex, "GET", "/api/v1/maintenance-windows?customer=acme"
                ).status_code == 404


def test_claim_steps_by_our_side_are_told_to_the_customer_once(db: Conn, people: Fleet,
                                                               base_url: str) -> None:
    exec_token = tokens.create(db, Role.MANAGER, None, "t-exec")
    c = call(base_url, people.acme, "POST", "/api/v1/claims", json={"text": "slow swap"}).json()
    claim = c["id"]
    assert call(base_url, people.manager, "POST", f"/api/v1/claims/{claim}/assign",
                json={"manager": "t-maria"}).status_code == 200
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert call(base_url, people.manager, "POST", f"/api/v1/claims/{claim}/plan",
                json={"items": [{"text": "Two spares on site", "owner": "t-maria",
                                 "due_at": due}]}).status_code == 200
    assert call(base_url, exec_token, "POST", f"/api/v1/claims/{claim}/assign",
                json={"manager": "t-exec"}).status_code == 200  # taken over
    rows = db.execute("SELECT e.kind, o.recipient FROM outbox o JOIN claim_events e ON"
                      " o.ref = 'claim:' || e.claim_id || ':event:' || e.id WHERE e.claim_id = %s"
                      " AND o.recipient LIKE 'customer:%%' ORDER BY e.id", (claim,)).fetchall()
    assert rows == [("assigned", "customer:acme:email:ops@acme.example"),
                    ("plan_presented", "customer:acme:email:ops@acme.example"),
                    ("assigned", "customer:acme:email:ops@acme.example")]
    subject = db.execute("SELECT subject FROM outbox o JOIN claim_events e ON o.ref = 'claim:'"
                         " || e.claim_id || ':event:' || e.id WHERE e.kind = 'plan_presented'"
                         " AND e.claim_id = %s AND o.recipient LIKE 'customer:%%'",
                         (claim,)).fetchone()
    assert subject == (f"[Hourglass] Your claim #{claim}: an action plan awaits your answer",)
    took = db.execute("SELECT o.recipient FROM outbox o JOIN claim_events e ON o.ref = 'claim:'"
                      " || e.claim_id || ':event:' || e.id WHERE e.claim_id = %s AND e.kind ="
                      " 'assigned' AND e.actor = 'manager:t-exec'", (claim,)).fetchall()
    assert ("t-maria",) in took  # the previous owner hears that the claim was taken over


def test_the_notice_end_is_recorded_and_told_once(db: Conn, people: Fleet) -> None:
    now = datetime.now(UTC)
    row = db.execute("INSERT INTO claims (customer_id, text, state, manager_id, plan, opened_at,"
                     " updated_at, notice_at, notice_effective) VALUES ('acme', 'slow',"
                     " 'notice_given', 't-maria', 1, %s, %s, %s, %s) RETURNING id",
                     (now, now, now - timedelta(days=30), now - timedelta(minutes=1))).fetchone()
    assert row is not None
    with psycopg.connect(db.info.dsn) as conn:
        engine.run_pass(conn, TimerPolicy(), now, "test")  # the dispatcher loop's own pass
        assert claims.end_notices(conn, now + timedelta(minutes=1)) == 0  # once
    events = db.execute("SELECT id FROM claim_events WHERE claim_id = %s AND kind ="
                        " 'notice_ended'", (row[0],)).fetchall()
    assert len(events) == 1
    assert outbox(db, f"claim:{row[0]}:event:{events[0][0]}") == [
        ("am-lee", "claim_notice_ended"), ("customer:acme:email:ops@acme.example",
                                           "claim_notice_ended"),
        ("t-maria", "claim_notice_ended")]


FLEET = """sites: [{id: fra1, name: Frankfurt, timezone: Europe/Berlin}]
customers:
  - id: initech
    name: Initech
    maintenance_windows: %s
"""


def test_hourglass_load_takes_maintenance_windows(pg_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOURGLASS_DATABASE_URL", pg_url)
    f = tmp_path / "fleet.yaml"
    f.write_text(FLEET % '[{days: [tue, thu], start: "02:00", end: "05:00",'
                         ' timezone: Europe/Berlin}]')
    assert main(["load", str(f)]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        got = conn.execute("SELECT windows FROM maintenance_windows").fetchall()
        assert got == [(BERLIN,)]
        conn.execute("UPDATE maintenance_windows SET windows = '[]', updated_by = 'customer'")
        assert main(["load", str(f)]) == 0  # the same file again: the customer's edit stays
        assert conn.execute("SELECT windows FROM maintenance_windows").fetchall() == [([],)]
    f.write_text(FLEET % '[{days: [tue, thu], start: "02:00", end: "5am", timezone: UTC}]')
    assert main(["load", str(f)]) != 0
    err = capsys.readouterr().err
    assert f"{f}: customers[0].maintenance_windows[0].end: not a time of day" in err
