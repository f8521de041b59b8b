"""Facility incidents on the dispatcher: told once, escalated once, each host credited once.

A rack of 40 hosts of two customers goes dark, comes back late; real database, the engine's
own pass at explicit times, and two dispatchers at once on two connections.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg

from dispatcher import delivery as notify
from dispatcher.service import facility
from dispatcher.service.engine import Engine, run_pass
from dispatcher.store import credits as credits_export
from dispatcher.store import tokens
from hourglass.config import NotifyConfig
from schemas.states import Role
from tests.dispatcher.world import T0, P, setup_fleet
from tests.web.conftest import Fleet

Conn = psycopg.Connection[tuple[Any, ...]]
DEADLINE = T0 + timedelta(hours=1)
RESOLVED = DEADLINE + timedelta(hours=10, seconds=1)  # past the 100 % cap (20 periods)
#: Host i's return, by i % 5: early (no credit), 29:59, 30:00, 30:01 late, never.
BACK = [DEADLINE - timedelta(minutes=1), DEADLINE + timedelta(minutes=29, seconds=59),
        DEADLINE + timedelta(minutes=30), DEADLINE + timedelta(minutes=30, seconds=1), None]
#: The percent owed by i % 5 (None: nothing).
PERCENT = [None, 5, 5, 10, 100]
FEES = {"acme": (Decimal("450.00"), "USD"), "globex": (Decimal("100.00"), "EUR")}
PEOPLE = ("t-maria", "t-eve", "am-lee", "am-kim", "am-gus")


def customer_of(i: int) -> str:
    """Hosts 0-24 are acme's, 25-39 globex's."""
    return "acme" if i < 25 else "globex"


def rack(conn: Conn) -> int:
    """The fleet, two account teams with contacts, and rack r12's 40 hosts gone dark at T0."""
    setup_fleet(conn)
    conn.execute("UPDATE customers SET account_manager = 'am-lee' WHERE id = 'acme'")
    conn.execute("INSERT INTO customers (id, name, account_manager)"
                 " VALUES ('globex', 'Globex', 'am-gus')")
    conn.execute("INSERT INTO account_team (customer_id, person_id) VALUES ('acme', 'am-kim')")
    conn.cursor().executemany("INSERT INTO contacts (person_id, channel, address)"
                              " VALUES (%s, 'email', %s)", [(p, f"{p}@example.com")
                                                             for p in PEOPLE])
    conn.cursor().executemany(
        "INSERT INTO hosts (id, customer_id, site_id, room, rack, monthly_fee, currency)"
        " VALUES (%s, %s, 'iad1', 'A', 'r12', %s, %s)",
        [(f"r12-{i:02}", customer_of(i), *FEES[customer_of(i)]) for i in range(40)])
    (fid,) = conn.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'A', 'r12', 'power', %s, %s, 40) RETURNING id",
        (T0, DEADLINE)).fetchone() or (0,)
    conn.cursor().executemany(
        "INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id, last_message)"
        " VALUES (%s, %s, %s, %s)",
        [(fid, f"r12-{i:02}", customer_of(i), T0 - timedelta(seconds=30)) for i in range(40)])
    return int(fid)


def come_back(conn: Conn, fid: int) -> None:
    """Hosts return at their times (some never); the collector resolves the facility."""
    for i in range(40):
        if BACK[i % 5] is not None:
            conn.execute("UPDATE facility_incident_hosts SET back_at = %s"
                         " WHERE facility_id = %s AND host_id = %s",
                         (BACK[i % 5], fid, f"r12-{i:02}"))
    conn.execute("UPDATE facility_incidents SET state = 'resolved', resolved_at = %s"
                 " WHERE id = %s", (RESOLVED, fid))


def told(conn: Conn, fid: int, step: str) -> list[str]:
    """Recipients of the step's messages in the outbox, one row per message."""
    return sorted(r[0] for r in conn.execute(
        "SELECT recipient FROM outbox WHERE ref = %s", (f"facility:{fid}:{step}",)))


def timeline(conn: Conn, fid: int, kind: str) -> list[dict[str, Any]]:
    """The facility events of one kind, oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT detail FROM facility_events WHERE facility_id = %s AND kind = %s"
        " ORDER BY at, id", (fid, kind))]


def expected() -> dict[str, tuple[Decimal, str, int]]:
    """host → (amount, currency, percent) for every host that is owed a credit."""
    out = {}
    for i in range(40):
        pct = PERCENT[i % 5]
        if pct is not None:
            fee, cur = FEES[customer_of(i)]
            out[f"r12-{i:02}"] = ((fee * pct / 100).quantize(Decimal("0.01")), cur, pct)
    return out


def ledger(conn: Conn, fid: int) -> dict[str, tuple[Decimal, str, int]]:
    """host → (amount, currency, percent) as written."""
    return {r[0]: (r[1], r[2], int(r[3])) for r in conn.execute(
        "SELECT host_id, amount, currency, percent FROM facility_credits"
        " WHERE facility_id = %s", (fid,))}


def test_rack_dark_then_back_late_tells_once_escalates_once_credits_each_host_once(
        pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
        for now in (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)):
            run_pass(db, P, now, "d1")
        # The site manager and both customers' account people, once each; nobody else yet.
        assert told(db, fid, "opened") == ["am-gus", "am-kim", "am-lee", "t-maria"]
        notified = timeline(db, fid, "notified")
        assert [(e["to"], e["role"]) for e in notified] == [
            ("t-maria", "manager"), ("am-lee", "account_team"), ("am-kim", "account_team"),
            ("am-gus", "account_team")]
        assert "25 hosts of your customers (acme)" in notified[1]["reason"]
        assert told(db, fid, "breach") == []
        # The deadline passes with the rack still dark: the executive, once.
        run_pass(db, P, DEADLINE - timedelta(seconds=1), "d1")
        assert told(db, fid, "breach") == []
        for now in (DEADLINE, DEADLINE + timedelta(minutes=5)):
            run_pass(db, P, now, "d1")
        assert told(db, fid, "breach") == ["t-eve"]
        assert [e["to"] for e in timeline(db, fid, "notified")][-1] == "t-eve"
        assert ledger(db, fid) == {}  # nothing credited while it is open
        come_back(db, fid)
        issued = RESOLVED + timedelta(seconds=3)
        run_pass(db, P, issued, "d1")
        assert ledger(db, fid) == expected()
        assert len(expected()) == 32  # 8 hosts were back in time
        # A second and third pass, and a restarted dispatcher, issue nothing more.
        run_pass(db, P, issued + timedelta(minutes=1), "d1")
        run_pass(db, P, issued + timedelta(minutes=2), "d2")
        (n,) = db.execute("SELECT count(*) FROM facility_credits").fetchone() or (0,)
        assert n == 32
        assert len(timeline(db, fid, "credit_issued")) == 32
        assert timeline(db, fid, "credited") == [{"hosts": 40, "credits": 32}]
        # The account people hear of the credits once: am-lee and am-kim (acme), am-gus.
        assert told(db, fid, "credited") == ["am-gus", "am-kim", "am-lee"]
        gus = [e for e in timeline(db, fid, "notified") if e["step"] == "credited"
               and e["to"] == "am-gus"]
        assert len(gus) == 1
        assert "globex: 12 hosts, 360.00 EUR" in gus[0]["reason"]  # 3x5 + 3x5 + 3x10 + 3x100
        assert told(db, fid, "opened") == ["am-gus", "am-kim", "am-lee", "t-maria"]
        assert told(db, fid, "breach") == ["t-eve"]
        # Each credit counts from the host's own return, or the resolution for the silent.
        never = db.execute("SELECT restored_at, periods FROM facility_credits"
                           " WHERE host_id = 'r12-04'").fetchone()
        assert never == (RESOLVED, 21)
        late = db.execute("SELECT restored_at, periods, late_seconds FROM facility_credits"
                          " WHERE host_id = 'r12-01'").fetchone()
        assert late == (BACK[1], 1, 29 * 60 + 59)


def race(url: str, now: datetime, errors: list[BaseException]) -> None:
    """Two dispatchers, each on its own connection, run one pass at the same `now` at once."""
    gate = threading.Barrier(2)

    def dispatcher(name: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                gate.wait()
                run_pass(conn, P, now, name)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher, args=(f"d{j}",)) for j in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def test_two_dispatchers_at_once_tell_escalate_and_credit_once(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
    errors: list[BaseException] = []
    for k in range(2):  # the rack is dark: two racing passes, twice
        race(pg_url, T0 + timedelta(seconds=30 + k), errors)
    for k in range(2):  # the deadline passes
        race(pg_url, DEADLINE + timedelta(seconds=k), errors)
    with psycopg.connect(pg_url, autocommit=True) as db:
        come_back(db, fid)
    for k in range(3):  # resolved: credits
        race(pg_url, RESOLVED + timedelta(seconds=5 + k), errors)
    assert errors == []
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert told(db, fid, "opened") == ["am-gus", "am-kim", "am-lee", "t-maria"]
        assert len(timeline(db, fid, "notified")) == 8  # four on open, executive, 3 credited
        assert told(db, fid, "breach") == ["t-eve"]
        assert ledger(db, fid) == expected()
        assert len(timeline(db, fid, "credit_issued")) == 32
        assert len(timeline(db, fid, "credited")) == 1
        steps = db.execute("SELECT step, count(*) FROM facility_steps GROUP BY step"
                           " ORDER BY step").fetchall()
        assert steps == [("breach", 1), ("credited", 1), ("opened", 1)]


def test_a_rack_back_late_before_any_dispatcher_looked_still_tells_the_executive(
        pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
        come_back(db, fid)  # opened, late and resolved while no dispatcher ran
        run_pass(db, P, RESOLVED + timedelta(seconds=5), "d1")
        assert told(db, fid, "breach") == ["t-eve"]
        assert ledger(db, fid) == expected()
        # Still news within a day: the manager and account teams hear it was resolved.
        assert told(db, fid, "opened") == ["am-gus", "am-kim", "am-lee", "t-maria"]
        assert all("It was resolved at" in e["reason"] for e in timeline(db, fid, "notified")
                   if e["step"] == "opened")


def test_an_outage_over_for_more_than_a_day_is_credited_but_not_announced(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
        come_back(db, fid)
        run_pass(db, P, RESOLVED + timedelta(hours=24, seconds=1), "d1")
        assert told(db, fid, "opened") == []
        assert ledger(db, fid) == expected()


def test_facility_credits_are_exported_and_pushed_to_billing_once(pg_url: str) -> None:
    url = "http://127.0.0.1:9/billing"  # only queued here; delivery is the outbox's own test
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
        come_back(db, fid)
        issued = RESOLVED + timedelta(seconds=3)
        run_pass(db, P, issued, "d1", billing_url=url)
        run_pass(db, P, issued + timedelta(seconds=1), "d1", billing_url=url)
        rows = db.execute("SELECT ref, address, body FROM outbox WHERE channel = 'billing'"
                          " ORDER BY id").fetchall()
        ids = [r[0] for r in db.execute("SELECT id FROM facility_credits ORDER BY id")]
        assert [r[0] for r in rows] == [f"facility-credit-{i}" for i in ids]
        assert {r[1] for r in rows} == {url}
        body = json.loads(rows[0][2])
        assert body["source"] == "facility"
        assert body["facility_incident"] == fid
        assert body["id"] == ids[0]
        assert body["amount"] in {"22.50", "45.00", "450.00",
                                                          "5.00", "10.00", "100.00"}
        month = f"{issued:%Y-%m}"
        items = credits_export.rows(db, month)
        assert len(items) == 32
        assert {i["source"] for i in items} == {"facility"}
        one = next(i for i in items if i["host"] == "r12-03")
        assert (one["amount"], one["currency"], one["percent"], one["periods"]) == (
            "45.00", "USD", "10", 2)
        assert one["incident"] is None
        assert one["facility_incident"] == fid
        csv_text = credits_export.render(items, month, "csv")
        assert csv_text.splitlines()[0] == ",".join(credits_export.COLUMNS)
        assert credits_export.COLUMNS[:13] == (
            "credit", "incident", "customer", "host", "amount", "currency", "percent",
            "periods", "late_seconds", "detected_at", "deadline", "verified_at", "issued_at")


def test_credits_api_lists_facility_credits_a_customer_only_its_own(
        base_url: str, db: Conn, fleet: Fleet) -> None:
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack, monthly_fee)"
               " VALUES ('r12-g', 'globex', 'iad1', 'A', 'r12', 200.00)")
    (fid,) = db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, state, detected_at,"
        " deadline, resolved_at, rack_hosts) VALUES ('iad1', 'A', 'r12', 'network',"
        " 'resolved', %s, %s, %s, 2) RETURNING id",
        (T0, DEADLINE, DEADLINE + timedelta(minutes=45))).fetchone() or (0,)
    db.cursor().executemany(
        "INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id, last_message,"
        " back_at) VALUES (%s, %s, %s, %s, %s)",
        [(fid, "web-01", "acme", T0, DEADLINE + timedelta(minutes=10)),
         (fid, "r12-g", "globex", T0, None)])
    facility.dispatch_pass(db, DEADLINE + timedelta(minutes=46), "d1")
    admin = tokens.create(db, Role.ADMIN, None, None)

    def items(token: str) -> list[tuple[str, str, str, str, int | None]]:
        r = httpx.get(f"{base_url}/api/v1/credits?month={T0:%Y-%m}",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        return [(i["source"], i["host"], i["customer"], i["amount"], i["facility_incident"])
                for i in r.json()["items"]]

    assert items(fleet.acme) == [("facility", "web-01", "acme", "22.50", fid)]
    assert items(fleet.globex) == [("facility", "r12-g", "globex", "20.00", fid)]
    assert sorted(items(admin)) == sorted([("facility", "web-01", "acme", "22.50", fid),
                                           ("facility", "r12-g", "globex", "20.00", fid)])
    one = httpx.get(f"{base_url}/api/v1/facility-incidents/{fid}",
                    headers={"Authorization": f"Bearer {fleet.manager}"}).json()
    assert [(e["kind"], e["detail"]["step"] if e["kind"] == "notified" else e["detail"].get(
        "host")) for e in one["timeline"]] == [
        ("notified", "opened"), ("notified", "breach"), ("credit_issued", "r12-g"),
        ("credit_issued", "web-01"), ("credited", None)]
    assert one["timeline"][0]["detail"]["to"] == "t-maria"
    assert one["timeline"][1]["detail"]["to"] is None  # no executive in this fleet: on record
    mine = httpx.get(f"{base_url}/api/v1/facility-incidents/{fid}",
                     headers={"Authorization": f"Bearer {fleet.acme}"}).json()
    assert "timeline" not in mine


def test_the_engine_loop_runs_the_facility_pass(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        fid = rack(db)
        engine = Engine(pg_url, tick_s=1.0, clock=lambda: T0 + timedelta(minutes=1))
        engine.run_once(db)
        engine.run_once(db)
        assert told(db, fid, "opened") == ["am-gus", "am-kim", "am-lee", "t-maria"]


class Billing(BaseHTTPRequestHandler):
    """Billing's endpoint: keeps each request, answers 200."""

    def do_POST(self) -> None:  # noqa: N802
        """Keep the request."""
        server: Any = self.server
        server.seen.append((dict(self.headers),
                            self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_a_facility_credit_reaches_billing_signed_with_its_own_idempotency_key(
        pg_url: str) -> None:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Billing)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/credits"
    secret = "shared-with-billing"
    cfg = NotifyConfig(billing_webhook_url=url, billing_webhook_secret=secret, timeout_s=5.0)
    try:
        with psycopg.connect(pg_url, autocommit=True) as db:
            setup_fleet(db)  # web-01, acme, 450.00 USD; no contacts: billing is the only push
            (fid,) = db.execute(
                "INSERT INTO facility_incidents (site_id, rack, cause, state, detected_at,"
                " deadline, resolved_at, rack_hosts) VALUES ('iad1', 'r12', 'power', 'resolved',"
                " %s, %s, %s, 1) RETURNING id",
                (T0, DEADLINE, DEADLINE + timedelta(minutes=31))).fetchone() or (0,)
            db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
                       " last_message) VALUES (%s, 'web-01', 'acme', %s)", (fid, T0))
            now = DEADLINE + timedelta(minutes=32)
            run_pass(db, P, now, "d1", billing_url=url)
            assert notify.deliver_due(db, cfg, lambda: now, "w1") == 1
            assert notify.deliver_due(db, cfg, lambda: now, "w1") == 0
            (credit,) = db.execute("SELECT id FROM facility_credits").fetchone() or (0,)
    finally:
        server.shutdown()
        server.server_close()
    [(headers, body)] = server.seen
    assert headers["Idempotency-Key"] == f"facility-credit-{credit}"
    signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hourglass-Signature"], signed)
    doc = json.loads(body)
    assert (doc["source"], doc["facility_incident"], doc["host"], doc["customer"]) == (
        "facility", fid, "web-01", "acme")
    assert (doc["amount"], doc["currency"], doc["percent"], doc["periods"]) == (
        "45.00", "USD", "10.000", 2)  # 31 min past: two started 30-min periods
