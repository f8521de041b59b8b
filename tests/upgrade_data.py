"""The upgrade test's data set (tests/test_upgrade.py): a fleet, three days of its MQTT
traffic and the dispatcher's rows, the way a previous release left them in production.

Run as a script by the previous release's interpreter (``python upgrade_data.py URL``, its
own code alone on the path), it migrates an empty database with that release's migrations,
loads the example fleet (plus a BMC host) with its ``hourglass load``, makes tokens with its
``hourglass token create``, moves a spare with its ``hourglass spares adjust``, and stores
the traffic with its collector (``decode``, ``ensure_partitions``, ``write_batch``), which
writes the inventory, host states, keys, telemetry, rule states, predictions, the two
incidents the traffic proves and the dead letters. ``fill`` then adds in plain SQL what
the dispatcher, the API and the notifier would have written over those days.

Module level imports only the standard library, psycopg and PyYAML: the old release's
packages are imported inside ``seed``. If a release changes one of the calls ``seed``
makes, branch on it there (the script must run against every release-N tag).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.types.json import Jsonb

#: The story's "now": the old release ran until then, then it was upgraded.
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
START = T0 - timedelta(days=3)  # the fleet's agents started then
EVERY = timedelta(hours=2)  # one telemetry message per host per slot, slots apart by this
#: The servers of docs/fleet.example.yaml (site, disk serial) and the BMC host added to it.
SERVERS = {"web-01": ("iad1", "ZL2A0101"), "web-02": ("iad1", "ZL2A0102"),
           "db-01": ("iad1", "ZL2A0103"), "gx-app-01": ("lon1", "S6PN0201"),
           "gx-app-02": ("lon1", "S6PN0202")}
BMC = "db-01-bmc"  # db-01's BMC, published by the SNMP proxy as a host of its own
NEW_DISK = "ZL2A9901"  # the disk t-ana puts into web-01 for the failed one
DISK_FAILS = START + timedelta(days=1, hours=6, seconds=20)  # web-01's disk (incident A)
DISK_SWAPPED = DISK_FAILS + timedelta(hours=3)  # web-01's new birth with the new disk
FAN_STOPS = T0 - timedelta(minutes=90)  # db-01's fan (incident B)
TOKENS = {"admin": ["--role", "admin"], "acme": ["--role", "customer", "--customer", "acme"],
          "ana": ["--role", "technician", "--person", "t-ana"],
          "maria": ["--role", "manager", "--person", "t-maria"]}


def iso(t: datetime) -> str:
    """RFC 3339 UTC with a Z, as agents send it."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _birth(host: str, site: str, disk: str, at: datetime) -> dict[str, Any]:
    """An agent's inventory: one CPU, DIMM, disk, PSU, fan and NIC."""
    return {"kind": "birth", "agent_version": "0.1.0", "boot_id": f"boot-{host}-{at:%d%H}",
            "session": f"sess-{host}-{at:%d%H}", "interval_s": EVERY.total_seconds(),
            "chassis": {"vendor": "Dell Inc.", "model": "PowerEdge R650",
                        "serial": f"CH-{host}"},
            "components": [
                {"id": "cpu:0", "kind": "cpu", "slot": "CPU1",
                 "model": "Intel(R) Xeon(R) Gold 6338", "attrs": {"cores": 32}},
                {"id": "dimm:A1", "kind": "dimm", "slot": "A1", "model": "M393A4K40DB3-CWE",
                 "serial": f"36E1{host[-2:]}B4", "size_bytes": 34359738368},
                {"id": f"disk:{disk}", "kind": "disk", "slot": "sda", "device": "/dev/sda",
                 "model": "ST8000NM000A", "serial": disk, "size_bytes": 8001563222016,
                 "attrs": {"protocol": "ATA"}},
                {"id": "psu:1", "kind": "psu", "slot": "PSU1", "model": "PWS-1K62A-1R"},
                {"id": "fan:fan1", "kind": "fan", "slot": "fan1"},
                {"id": "nic:eno1", "kind": "nic", "slot": "eno1",
                 "attrs": {"mac": "b4:96:91:00:00:01", "speed_mbps": 10000}}]}


def _telemetry(host: str, disk: str, at: datetime, n: int) -> dict[str, Any]:
    """One interval's readings; web-01's disk counts reallocated sectors before it fails."""
    fan_ok = not (host == "db-01" and at > FAN_STOPS)
    failing = host == "web-01" and disk != NEW_DISK and at > DISK_FAILS - EVERY * 2
    disk_ok = not (failing and at > DISK_FAILS)
    sectors = 0 if not failing else 8 if disk_ok else 1208
    disk_state: dict[str, Any] = {"id": f"disk:{disk}", "kind": "disk", "slot": "sda",
                                  "serial": disk, "status": "ok" if disk_ok else "failed"}
    if not disk_ok:
        disk_state |= {"failure": "smart_failed", "detail": "SMART overall-health: FAILED"}
    return {"kind": "telemetry", "interval_s": EVERY.total_seconds(), "readings": [
        {"component": f"host:{host}", "metric": "cpu.percent", "value": 10 + n % 7 * 3.5},
        {"component": f"host:{host}", "metric": "mem.used_percent", "value": 40 + n % 5},
        {"component": "fan:fan1", "metric": "fan.rpm", "value": 5400 if fan_ok else 0},
        {"component": f"disk:{disk}", "metric": "smart.temperature_c", "value": 33 + n % 4},
        {"component": f"disk:{disk}", "metric": "smart.attr_5_raw", "value": sectors}],
        "components": [disk_state, {"id": "fan:fan1", "kind": "fan", "slot": "fan1",
                                    "status": "ok" if fan_ok else "failed"}]}


def _host_story(host: str, site: str, disk: str) -> list[tuple[datetime, dict[str, Any]]]:
    """What one server's agent sent, in time order, without envelopes."""
    out = [(START, _birth(host, site, disk, START)),
           (START, {"kind": "state", "state": "online", "session": f"sess-{host}-{START:%d%H}"})]
    slot, n = START + timedelta(seconds=30), 0
    while slot < T0:
        now_in = NEW_DISK if host == "web-01" and slot > DISK_SWAPPED else disk
        out.append((slot, _telemetry(host, now_in, slot, n)))
        slot, n = slot + EVERY, n + 1
    if host == "web-01":
        out.append((DISK_FAILS, {"kind": "event", "component": f"disk:{disk}",
                                 "component_kind": "disk", "status": "failed",
                                 "failure": "smart_failed", "slot": "sda", "serial": disk,
                                 "detected_at": iso(DISK_FAILS), "evidence": {
                                     "tool": "smartctl", "smart_status_passed": False,
                                     "exit_status": 8}}))
        out.append((DISK_SWAPPED, _birth(host, site, NEW_DISK, DISK_SWAPPED)))
        out.append((DISK_SWAPPED, {"kind": "state", "state": "online",
                                   "session": f"sess-{host}-{DISK_SWAPPED:%d%H}"}))
    if host == "db-01":
        out.append((FAN_STOPS, {"kind": "event", "component": "fan:fan1",
                                "component_kind": "fan", "status": "failed",
                                "failure": "fan_stopped", "slot": "fan1",
                                "detected_at": iso(FAN_STOPS),
                                "evidence": {"tool": "ipmitool", "rpm": 0}}))
    if host == "gx-app-01":  # a clock a week slow: lands in the default partition
        out.append((START - timedelta(days=7), _telemetry(host, disk, START, 99)))
    if host == "gx-app-02":
        out.append((T0 - timedelta(minutes=30), {"kind": "state", "state": "offline",
                                                 "reason": "shutdown",
                                                 "session": f"sess-{host}-{START:%d%H}"}))
    return out


def traffic() -> list[tuple[datetime, str, bytes]]:
    """Every MQTT message of the three days, as (arrival, topic, payload), by arrival."""
    stories = {h: _host_story(h, site, disk) for h, (site, disk) in SERVERS.items()}
    bmc = _birth(BMC, "iad1", "NONE", START) | {"chassis": {"serial": "CH-db-01"},
                                                 "components": [{"id": "bmc:power",
                                                                 "kind": "bmc"}]}
    stories[BMC] = [(START, bmc)] + [
        (START + EVERY * i + timedelta(seconds=40), {
            "kind": "telemetry", "interval_s": EVERY.total_seconds(), "components": [],
            "readings": [{"component": "bmc:power", "metric": "bmc.power_on", "value": 1}]})
        for i in range(int((T0 - START) / EVERY))]
    out: list[tuple[datetime, str, bytes]] = []
    for host, story in stories.items():
        site = SERVERS.get(host, ("iad1", ""))[0]
        # sent (and numbered) in arrival order; the slow clock's message came near the end
        sent = sorted(((ts + timedelta(seconds=1) if ts >= START else T0 - timedelta(
            minutes=5), ts, body) for ts, body in story), key=lambda s: s[0])
        for seq, (arrival, ts, body) in enumerate(sent, start=1):
            env = {"v": 1, "host": host, "site": site, "seq": seq, "ts": iso(ts)} | body
            out.append((arrival, f"hg/v1/{site}/{host}/{body['kind']}",
                        json.dumps(env).encode()))
    out += [(START + timedelta(hours=1), "hg/v1/iad1/web-02/telemetry", b"{not json"),
            (START + timedelta(hours=1), "hg/v1/iad1/stray-01/state",
             json.dumps({"v": 1, "kind": "state", "host": "stray-01", "site": "iad1",
                         "seq": 1, "ts": iso(START), "state": "online"}).encode())]
    return sorted(out, key=lambda m: m[0])


def fleet_file(example: Path, out: Path) -> Path:
    """The release's example fleet with db-01's BMC host added, written to out."""
    fleet = yaml.safe_load(example.read_text(encoding="utf-8"))
    acme = next(c for c in fleet["customers"] if c["id"] == "acme")
    acme["hosts"].append({"id": BMC, "site": "iad1", "room": "B", "rack": "r03",
                          "monthly_fee": 0})
    next(h for h in acme["hosts"] if h["id"] == "db-01")["bmc"] = BMC
    out.write_text(yaml.safe_dump(fleet, sort_keys=False), encoding="utf-8")
    return out


def _cli(*argv: str) -> str:
    """Run the release's `hourglass` command in this process; return what it printed."""
    from hourglass.cli import main  # the old release's

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        raise SystemExit(f"hourglass {' '.join(argv)} exited {code}")
    return out.getvalue()


def seed(url: str) -> dict[str, str]:
    """Migrate, load and ingest with the release whose tree is the working directory."""
    import schemas.migrate
    from collector import store
    from collector.decode import decode
    from collector.model import Message, Received

    here = Path.cwd().resolve()
    if not Path(schemas.migrate.__file__).resolve().is_relative_to(here):
        raise SystemExit(f"the old release's code is not first on the path: {here}")
    schemas.migrate.migrate(url, log=lambda m: None)
    os.environ["HOURGLASS_DATABASE_URL"] = url
    _cli("load", str(fleet_file(here / "docs/fleet.example.yaml", here / "fleet.yaml")))
    tokens = {who: _cli("token", "create", *args).split()[-1] for who, args in TOKENS.items()}
    _cli("spares", "adjust", "--site", "lon1", "--part", "MZ7L3960HCJR", "--delta", "-1",
         "--reason", "dead on arrival, returned to the vendor")
    with psycopg.connect(url, autocommit=True) as conn:
        for day in (START, T0):  # the collector makes partitions a day back, three ahead
            store.ensure_partitions(conn, day, retention_days=3650)
        directory = store.Directory()
        for mid, batch in enumerate(_batches(traffic()), start=1):
            decoded = [decode(Received(topic, payload, mid, 1, at))
                       for at, topic, payload in batch]
            store.write_batch(conn, directory, [m for m in decoded if isinstance(m, Message)],
                              [m for m in decoded if not isinstance(m, Message)])
    return tokens


def _batches(messages: list[tuple[datetime, str, bytes]],
             ) -> Iterator[list[tuple[datetime, str, bytes]]]:
    """The collector's batches: what arrived within one telemetry slot."""
    batch: list[tuple[datetime, str, bytes]] = []
    for m in messages:
        if batch and m[0] - batch[0][0] >= EVERY / 2:
            yield batch
            batch = []
        batch.append(m)
    if batch:
        yield batch


# --- what the dispatcher, the API and the notifier wrote over the three days (plain SQL) ---

Conn = psycopg.Connection[tuple[Any, ...]]
M = timedelta(minutes=1)


def _ins(conn: Conn, table: str, **cols: Any) -> Any:
    """Insert one row (dicts go as jsonb); return its first column (the id)."""
    vals = [Jsonb(v) if isinstance(v, dict) else v for v in cols.values()]
    row = conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES"
                       f" ({', '.join(['%s'] * len(cols))}) RETURNING *", vals).fetchone()
    assert row is not None
    return row[0]


def _ev(conn: Conn, incident: int, at: datetime, actor: str, kind: str, **detail: Any) -> None:
    """One entry of the incident's timeline."""
    _ins(conn, "incident_events", incident_id=incident, at=at, actor=actor, kind=kind,
         detail=detail)


def _incident(conn: Conn, host: str, component: str, failure: str, detected: datetime,
              **cols: Any) -> int:
    """An incident as the collector opens it, on the host's site and customer's contract."""
    row = conn.execute("SELECT h.site_id, h.customer_id, c.sla_minutes FROM hosts h JOIN"
                       " customers c ON c.id = h.customer_id WHERE h.id = %s", (host,)).fetchone()
    assert row is not None, host
    site, customer, sla = row
    kind = component.split(":")[0]
    i = int(_ins(conn, "incidents", host_id=host, site_id=site, customer_id=customer,
                 component=component, kind=kind, failure=failure,
                 slot=cols.pop("slot", component.split(":")[1]), detected_at=detected,
                 deadline=detected + sla * M, sla_minutes=sla,
                 evidence={"source": "event", "rule": failure}, **cols))
    _ev(conn, i, detected, "collector", "detected", rule=failure, failure=failure,
        component=component)
    return i


def _job(conn: Conn, incident: int, tech: str, at: datetime, state: str,
         **stamps: datetime | str) -> int:
    """A job with its timeline events; the incident follows (state, assignee, plan)."""
    job = int(_ins(conn, "jobs", incident_id=incident, technician_id=tech, state=state,
                   dispatched_at=at, **stamps))
    _ev(conn, incident, at, "dispatcher", "dispatched", technician=tech, job=job,
        predicted_fix=(at + 40 * M).isoformat(), slack_minutes=20.0, transfer=0)
    for stamp, kind in (("acknowledged_at", "acknowledged"), ("on_site_at", "on_site"),
                        ("replaced_at", "replaced")):
        if isinstance(when := stamps.get(stamp), datetime):
            _ev(conn, incident, when, f"technician:{tech}", kind, job=job)
    last = max(v for v in (at, *stamps.values()) if isinstance(v, datetime))
    conn.execute("UPDATE incidents SET assignee = %s, updated_at = %s, planned_at = %s"
                 " WHERE id = %s", (tech, last, last, incident))
    return job


def _timers(conn: Conn, incident: int, created: datetime, *specs: tuple[Any, ...]) -> None:
    """(kind, guard, due, fired_at or None, outcome or None) per timer."""
    for kind, guard, due, fired, outcome in specs:
        _ins(conn, "timers", incident_id=incident, kind=kind, guard=guard, due_at=due,
             created_at=created, fired_at=fired, outcome=outcome,
             fired_by="hg-dispatcher-vm:4121" if fired else None)


def _state(conn: Conn, incident: int, state: str, **cols: Any) -> None:
    """Where the incident's life stands at T0 (and the columns that go with it)."""
    sets = ", ".join(f"{c} = %s" for c in ("state", *cols))
    conn.execute(f"UPDATE incidents SET {sets} WHERE id = %s",
                 (state, *cols.values(), incident))


def _spare(conn: Conn, site: str, part: str, delta: int, reason: str, actor: str,
           at: datetime, **owner: int) -> None:
    """A stock change through the ledger, as dispatcher/spares.py writes it."""
    with conn.transaction():
        conn.execute("SELECT set_config('hourglass.ledger', 'on', true)")
        row = conn.execute("UPDATE spares SET count = count + %s WHERE site_id = %s AND"
                           " part = %s RETURNING count", (delta, site, part)).fetchone()
        assert row is not None
        _ins(conn, "spare_movements", site_id=site, part=part, delta=delta, count_after=row[0],
             reason=reason, actor=actor, at=at, **owner)


def _out(conn: Conn, ref: str, who: str, channel: str, address: str, reason: str,
         at: datetime, outcomes: tuple[str, ...], code: int | None = None) -> None:
    """One message of the outbox and its delivery attempts ('sent', 'retry', 'failed')."""
    last = outcomes[-1] if outcomes else "pending"
    state = {"sent": "sent", "failed": "failed"}.get(last, "pending")
    error = None if last == "sent" else "URLError: <urlopen error timed out>"
    box = _ins(conn, "outbox", ref=ref, recipient=who, channel=channel, address=address,
               reason=reason, subject=f"[Hourglass] {reason}: {ref}",
               body=f"{reason} ({ref})\nAt: {iso(at)}", created_at=at,
               due_at=at + len(outcomes) * M, attempts=len(outcomes), state=state,
               done_at=None if state == "pending" else at + len(outcomes) * M,
               last_error=error if outcomes else None)
    for n, outcome in enumerate(outcomes, start=1):
        _ins(conn, "deliveries", outbox_id=box, attempt=n, started_at=at + (n - 1) * M,
             outcome=outcome, status_code=code if outcome == "sent" else None,
             error=None if outcome == "sent" else error, duration_ms=41.5 + n,
             worker=f"hg-dispatcher-vm:4121:{'email' if channel == 'email' else 'webhook'}")


def fill(conn: Conn) -> None:
    """The dispatcher's side of the story, over the collector's incidents and predictions."""
    def one(sql: str, *args: Any) -> Any:
        row = conn.execute(sql, args).fetchone()
        assert row is not None, (sql, args)
        return row[0]

    a = one("SELECT id FROM incidents WHERE component = %s", f"disk:{SERVERS['web-01'][1]}")
    b = one("SELECT id FROM incidents WHERE component = 'fan:fan1' AND host_id = 'db-01'")
    _incident_a(conn, a, one("SELECT deadline FROM incidents WHERE id = %s", a))
    _open_incidents(conn, b)
    _closed_incidents(conn)
    _facility(conn)
    _proactive(conn, one("SELECT id FROM predictions WHERE state = 'done' ORDER BY id LIMIT 1"),
               a)
    _claims(conn, a)
    ana = one("SELECT id FROM api_tokens WHERE person_id = 't-ana'")
    job = one("SELECT id FROM jobs WHERE incident_id = %s", b)
    _ins(conn, "idempotency_keys", token_id=ana, key="0b6f1c52-ack", status_code=200,
         request=json.dumps({"action": "ACKNOWLEDGE", "job": job}, sort_keys=True),
         response={"id": job, "state": "acknowledged"})
    last = one("SELECT max(id) FROM incident_events")
    conn.execute("UPDATE notifier_cursor SET xid = pg_current_xact_id(), event_id = %s",
                 (last - 2,))
    for event in (last - 1, last):
        _ins(conn, "notified_events", event_id=event)
    alert = one("SELECT min(id) FROM spare_alerts")
    _ins(conn, "notified_alerts", alert_id=alert, at=T0 - 20 * M)
    # the pruner kept gx-app-02's highest pruned seq when its first keys went
    conn.execute("DELETE FROM ingest_keys WHERE host_id = 'gx-app-02' AND seq <= 2")
    _ins(conn, "ingest_floor", host_id="gx-app-02", seq=2)
    _later_releases(conn)


def _later_releases(conn: Conn) -> None:
    """Rows of the tables only later releases have, a branch per release (the release's own
    code fills what it can: release-2's collector writes host_state.offline_at)."""
    have = {r[0] for r in conn.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'")}
    if "collector_status.client_id" in have:  # release-2 (017)
        _ins(conn, "collector_status", client_id="hg-collector-vm-1", ready=True,
             detection_paused=False, oldest_unacked_s=0.4, updated_at=T0 - 2 * M)
        _ins(conn, "collector_status", client_id="hg-collector-vm-2", ready=False,
             detection_paused=True, reasons=["no message on the shared subscription for 12 s"],
             held_sites=["lon1"], oldest_unacked_s=12.5, updated_at=T0 - 3 * M)


def _incident_a(conn: Conn, a: int, due: datetime) -> None:
    """web-01's disk: reassigned, fixed two hours late, credited, closed, reviewed, surveyed."""
    da, fixed = DISK_FAILS, DISK_SWAPPED
    job1 = _job(conn, a, "t-ana", da + M, "cancelled", finished_at=da + 6 * M)
    job2 = _job(conn, a, "t-maria", da + 6 * M, "done", acknowledged_at=da + 9 * M,
                on_site_at=da + 25 * M, replaced_at=fixed - 10 * M, new_serial=NEW_DISK,
                finished_at=fixed)
    _ev(conn, a, da + 6 * M, "timer", "reassigned", job=job2, to="t-maria",
        reason="not acknowledged within 5 minutes")
    _timers(conn, a, da + M, ("ack_timeout", f"job={job1}|p0", da + 6 * M, da + 6 * M, "acted"),
            ("ack_timeout", f"job={job2}|p0", da + 11 * M, da + 11 * M, "stale"),
            ("risk", "|p0", due - 15 * M, due - 15 * M, "acted"),
            ("breach", "|p0", due, due, "acted"),
            ("verify_timeout", f"job={job2}|replaced", fixed + 5 * M, fixed + 5 * M, "stale"))
    _ev(conn, a, due - 15 * M, "timer", "escalated", to="t-maria", step="risk")
    _ev(conn, a, due, "timer", "escalated", to="t-ines", step="breach", role="executive")
    _ev(conn, a, fixed, "telemetry", "verified", serial=NEW_DISK, slot="sda")
    credit = _ins(conn, "credits", incident_id=a, customer_id="acme", amount=45, currency="USD",
                  percent=10, periods=2, late_seconds=(fixed - due).total_seconds(),
                  policy={"percent": "5", "period_minutes": 60, "cap_percent": "100"},
                  issued_at=fixed + M)
    _ev(conn, a, fixed + M, "dispatcher", "credit_issued", credit=credit, amount="45.00",
        currency="USD", percent="10.000", periods=2)
    closed = fixed + 2 * timedelta(hours=1)
    _ev(conn, a, closed, "customer:acme", "closed")
    _state(conn, a, "closed", verified_at=fixed, closed_at=closed, updated_at=closed,
           planned_at=closed)
    _ins(conn, "spare_reservations", incident_id=a, site_id="iad1", part="ST8000NM000A",
         state="consumed", reserved_at=da + 6 * M, ended_at=fixed)
    _spare(conn, "iad1", "ST8000NM000A", -1, "consumed by the verified fix", "dispatcher",
           fixed, incident_id=a)
    _ins(conn, "surveys", incident_id=a, score=4, comment="late, but we were kept informed",
         at=closed + timedelta(hours=1))
    _ev(conn, a, closed + timedelta(hours=1), "customer:acme", "survey", score=4)
    _ins(conn, "reviews", incident_id=a, author="manager:t-maria", created_at=T0 - 20 * 60 * M,
         updated_at=T0 - 18 * 60 * M, cause="the only disk technician on shift missed the"
         " page; the spare was fetched from the store room late")
    _ins(conn, "review_items", incident_id=a, n=1, text="page the manager with the technician",
         owner="t-maria", due_at=T0 + timedelta(days=7), done_at=T0 - 60 * M)
    _ins(conn, "review_items", incident_id=a, n=2, text="tell Acme what changes",
         owner="am-lee", due_at=T0 + timedelta(days=3))
    for who, channel, address, outcomes, code in (
            ("am-lee", "email", "lee.park@example.net", ("sent",), None),
            ("am-kim", "webhook", "https://crm.example.net/hooks/hourglass", ("retry", "sent"),
             204),
            ("t-ana", "email", "ana.souza@example.net", ("sent",), None)):
        _out(conn, f"incident:{a}:event:1", who, channel, address, "incident_opened", da,
             outcomes, code)
    _out(conn, f"credit:{credit}", "billing", "billing", "https://billing.example.net/credits",
         "credit_issued", fixed + M, ("sent",), 200)


def _open_incidents(conn: Conn, b: int) -> None:
    """Incidents still open at T0, one per open state (b: db-01's fan, the collector's)."""
    job = _job(conn, b, "t-ana", FAN_STOPS + M, "on_site", acknowledged_at=FAN_STOPS + 5 * M,
               on_site_at=FAN_STOPS + 20 * M)
    _state(conn, b, "on_site")
    _ev(conn, b, FAN_STOPS + M, "dispatcher", "escalated", to="t-maria", step="no_spare",
        reason="no spare fan on site at iad1: a part must come from the depot")
    _timers(conn, b, FAN_STOPS + M,
            ("ack_timeout", f"job={job}|p0", FAN_STOPS + 6 * M, FAN_STOPS + 6 * M, "stale"),
            ("risk", "|p0", FAN_STOPS + 45 * M, FAN_STOPS + 45 * M, "nobody"),
            ("breach", "|p0", FAN_STOPS + 60 * M, FAN_STOPS + 60 * M, "acted"))
    _out(conn, f"incident:{b}:event:9", "t-maria", "webhook",
         "https://chat.example.net/hooks/iad1-managers", "escalated", FAN_STOPS + M,
         ("retry", "retry", "retry", "failed"))
    c = _incident(conn, "gx-app-01", f"disk:{SERVERS['gx-app-01'][1]}", "smart_failed",
                  T0 - 50 * M, serial=SERVERS["gx-app-01"][1])
    job = _job(conn, c, "t-chloe", T0 - 49 * M, "acknowledged", acknowledged_at=T0 - 47 * M)
    _state(conn, c, "acknowledged")
    _timers(conn, c, T0 - 49 * M, ("breach", "|p0", T0 + 190 * M, None, None),
            ("risk", "|p0", T0 + 175 * M, None, None))
    _ins(conn, "spare_reservations", incident_id=c, site_id="lon1", part="MZ7L3960HCJR",
         state="reserved", reserved_at=T0 - 49 * M)
    d = _incident(conn, "gx-app-02", "psu:1", "psu_lost", T0 - 40 * M, slot="PSU1")
    _job(conn, d, "t-chloe", T0 - 39 * M, "acknowledged", acknowledged_at=T0 - 35 * M)
    _ins(conn, "pauses", incident_id=d, reason="customer_maintenance_window",
         started_at=T0 - 30 * M, started_by="customer:globex")
    _ev(conn, d, T0 - 30 * M, "customer:globex", "paused", reason="customer_maintenance_window")
    _state(conn, d, "paused")
    _timers(conn, d, T0 - 39 * M, ("breach", "|p0", T0 + 200 * M, None, None))
    e = _incident(conn, "web-02", "dimm:A1", "ecc_uncorrectable", T0 - 25 * M)
    _job(conn, e, "t-ana", T0 - 24 * M, "declined", finished_at=T0 - 20 * M)
    _ev(conn, e, T0 - 20 * M, "technician:t-ana", "declined", reason="busy on db-01's fan")
    _state(conn, e, "detected", assignee=None, next_assign_at=T0 + 5 * M)
    f = _incident(conn, "db-01", f"disk:{SERVERS['db-01'][1]}", "smart_failed", T0 - 100 * M)
    job = _job(conn, f, "t-ben", T0 - 99 * M, "replaced", acknowledged_at=T0 - 95 * M,
               on_site_at=T0 - 80 * M, replaced_at=T0 - 10 * M, new_serial="ZL2A9902")
    _state(conn, f, "replaced")
    _timers(conn, f, T0 - 10 * M, ("verify_timeout", f"job={job}|replaced", T0 + 5 * M, None,
                                   None))
    i = _incident(conn, "web-02", "nic:eno1", "nic_down", T0 - 4 * M)
    job = _job(conn, i, "t-ana", T0 - 3 * M, "dispatched")
    _state(conn, i, "dispatched")
    _timers(conn, i, T0 - 3 * M, ("ack_timeout", f"job={job}|p0", T0 + 2 * M, None, None))


def _closed_incidents(conn: Conn) -> None:
    """Fixed in time: one verified after a pause (not yet confirmed), one closed."""
    at = START + 5 * 60 * M
    g = _incident(conn, "web-01", "psu:1", "psu_lost", at, slot="PSU1")
    _job(conn, g, "t-ana", at + M, "done", acknowledged_at=at + 3 * M, on_site_at=at + 10 * M,
         replaced_at=at + 40 * M, new_serial="P1K6-8812", finished_at=at + 45 * M)
    _ins(conn, "pauses", incident_id=g, reason="customer_denied_access", started_at=at + 12 * M,
         started_by="manager:t-maria", ended_at=at + 32 * M, ended_by="manager:t-maria")
    _ev(conn, g, at + 12 * M, "manager:t-maria", "paused", reason="customer_denied_access")
    _ev(conn, g, at + 32 * M, "manager:t-maria", "resumed", paused_seconds=1200)
    _ev(conn, g, at + 45 * M, "telemetry", "verified", slot="PSU1")
    _state(conn, g, "verified", verified_at=at + 45 * M, deadline=at + 80 * M)
    _spare(conn, "iad1", "PWS-1K62A-1R", -1, "consumed by the verified fix", "dispatcher",
           at + 45 * M, incident_id=g)
    _ins(conn, "spare_reservations", incident_id=g, site_id="iad1", part="PWS-1K62A-1R",
         state="consumed", reserved_at=at + M, ended_at=at + 45 * M)
    _ins(conn, "spare_alerts", site_id="iad1", part="PWS-1K62A-1R", kind="psu", available=1,
         threshold=1, at=at + 45 * M)
    at = START + 2 * 60 * M
    h = _incident(conn, "gx-app-01", "fan:fan1", "fan_stopped", at)
    _job(conn, h, "t-chloe", at + M, "done", acknowledged_at=at + 2 * M, on_site_at=at + 9 * M,
         replaced_at=at + 30 * M, finished_at=at + 60 * M)
    _ev(conn, h, at + 60 * M, "telemetry", "verified", slot="fan1")
    _ev(conn, h, at + 120 * M, "customer:globex", "closed")
    _state(conn, h, "closed", verified_at=at + 60 * M, closed_at=at + 120 * M)
    _ins(conn, "surveys", incident_id=h, score=10, comment=None, at=at + 130 * M)


def _facility(conn: Conn) -> None:
    """A PDU that took web-01 and web-02 down, back 15 minutes late and credited; and a rack
    at lon1 silent at T0."""
    at = START + 40 * 60 * M
    f = _ins(conn, "facility_incidents", site_id="iad1", room="A", rack="r12", cause="power",
             state="resolved", detected_at=at, deadline=at + 60 * M, rack_hosts=2,
             evidence={"silent": 2, "of": 2, "bmc_power_off": 0}, resolved_at=at + 75 * M,
             scope="pdu", scope_id="iad1-r12-pdu-a")
    for host, fee in (("web-01", 450), ("web-02", 450)):
        _ins(conn, "facility_incident_hosts", facility_id=f, host_id=host, customer_id="acme",
             last_message=at - 3 * M, back_at=at + 75 * M)
        _ins(conn, "facility_credits", facility_id=f, host_id=host, customer_id="acme",
             amount=fee * 0.05, currency="USD", percent=5, periods=1, late_seconds=900,
             restored_at=at + 75 * M, issued_at=at + 76 * M,
             policy={"percent": "5", "period_minutes": 30, "cap_percent": "100"})
    for step, when, who, role in (("opened", at, "t-maria", "site_manager"),
                                  ("breach", at + 60 * M, "t-ines", "executive"),
                                  ("credited", at + 76 * M, "am-lee", "account_manager")):
        _ins(conn, "facility_steps", facility_id=f, step=step, at=when,
             worker="hg-dispatcher-vm:4121")
        _ins(conn, "facility_events", facility_id=f, at=when, actor="dispatcher",
             kind="notified", detail={"step": step, "to": who, "role": role})
        _out(conn, f"facility:{f}:{step}", who, "email", f"{who}@example.net", step, when,
             ("sent",))
    g = _ins(conn, "facility_incidents", site_id="lon1", room="1", rack="14", cause="network",
             detected_at=T0 - 10 * M, deadline=T0 + 50 * M, rack_hosts=2,
             evidence={"silent": 1, "of": 2}, scope="rack", scope_id="14")
    _ins(conn, "facility_incident_hosts", facility_id=g, host_id="gx-app-01",
         customer_id="globex", last_message=T0 - 120 * M)
    _ins(conn, "facility_steps", facility_id=g, step="opened", at=T0 - 9 * M,
         worker="hg-dispatcher-vm:4121")


def _proactive(conn: Conn, p1: int, a: int) -> None:
    """Planned work from predictions: one dismissed when its disk failed first (incident a
    took its spare), one done, one under way, one nobody could take yet."""
    def prediction(host: str, component: str, prediction: str, rule: str, state: str,
                   at: datetime, **cols: Any) -> int:
        return int(_ins(conn, "predictions", host_id=host, site_id=SERVERS[host][0],
                        customer_id="acme" if SERVERS[host][0] == "iad1" else "globex",
                        component=component, kind=component.split(":")[0],
                        prediction=prediction, rule=rule, state=state, detected_at=at,
                        last_seen=at + 60 * M, evidence={"source": "telemetry"},
                        last_evidence={"source": "telemetry"}, **cols))

    j1 = _ins(conn, "proactive_jobs", prediction_id=p1, site_id="iad1", technician_id="t-ana",
              state="dismissed", spare_part="ST8000NM000A", planned_at=DISK_FAILS - 60 * M,
              finished_at=DISK_FAILS + 2 * M, finished_by="manager:t-maria",
              note="the disk failed first: incident replaces it")
    _ins(conn, "spare_reservations", proactive_job_id=j1, site_id="iad1", part="ST8000NM000A",
         state="released", reserved_at=DISK_FAILS - 60 * M, ended_at=DISK_FAILS + M)
    _ins(conn, "proactive_job_events", proactive_job_id=j1, at=DISK_FAILS + M,
         actor="dispatcher", kind="spare_taken", detail={"incident": a, "part": "ST8000NM000A"})
    at = START + 10 * 60 * M
    p2 = prediction("web-02", f"disk:{SERVERS['web-02'][1]}", "smart_counter_rising",
                    "smart_baseline", "done", at, slot="sda", serial=SERVERS["web-02"][1],
                    closed_at=at + 300 * M, repeats=4)
    j2 = _ins(conn, "proactive_jobs", prediction_id=p2, site_id="iad1", technician_id="t-ana",
              state="done", spare_part="ST8000NM000A", planned_at=at + M,
              acknowledged_at=at + 90 * M, finished_at=at + 300 * M, finished_by="telemetry",
              new_serial="ZL2A9903", reminded_at=at + 60 * M)
    _ins(conn, "proactive_job_events", proactive_job_id=j2, at=at + 30 * M,
         actor="dispatcher", kind="replanned", detail={"from": "t-ben", "to": "t-ana",
                                                       "reason": "t-ben went off shift"})
    _ins(conn, "spare_reservations", proactive_job_id=j2, site_id="iad1", part="ST8000NM000A",
         state="consumed", reserved_at=at + M, ended_at=at + 300 * M)
    _spare(conn, "iad1", "ST8000NM000A", -1, "consumed by planned work", "dispatcher",
           at + 300 * M, proactive_job_id=j2)
    p3 = prediction("gx-app-02", f"disk:{SERVERS['gx-app-02'][1]}", "smart_command_timeouts",
                    "smart_188_jump", "open", T0 - 8 * 60 * M)
    j3 = _ins(conn, "proactive_jobs", prediction_id=p3, site_id="lon1", technician_id="t-chloe",
              state="acknowledged", spare_part="MZ7L3960HCJR", planned_at=T0 - 7 * 60 * M,
              acknowledged_at=T0 - 6 * 60 * M)
    _ins(conn, "spare_reservations", proactive_job_id=j3, site_id="lon1", part="MZ7L3960HCJR",
         state="reserved", reserved_at=T0 - 7 * 60 * M)
    _ins(conn, "spare_alerts", site_id="lon1", part="MZ7L3960HCJR", kind="disk", available=0,
         threshold=1, at=T0 - 49 * M)
    p4 = prediction("gx-app-01", "dimm:A1", "ecc_correctable_rate", "ecc_ce_window", "open",
                    T0 - 3 * 60 * M, slot="A1", next_plan_at=T0 + 60 * M)
    _ins(conn, "proactive_jobs", prediction_id=p4, site_id="lon1", technician_id="t-chloe",
         state="planned", part_note="the last spare DIMM is kept for failures",
         planned_at=T0 - 170 * M)


def _claims(conn: Conn, a: int) -> None:
    """Acme's claim on incident a with an accepted plan; Globex's, which ended in its exit."""
    opened = DISK_SWAPPED + 24 * 60 * M
    c = _ins(conn, "claims", customer_id="acme", incident_id=a, state="plan_accepted",
             text="two hours for one disk is not the one hour we pay for", manager_id="t-maria",
             plan=1, opened_at=opened, updated_at=opened + 300 * M)
    for n, (text, owner, done) in enumerate((("page the manager too", "t-maria", opened),
                                             ("monthly report to Acme", "am-lee", None)), 1):
        _ins(conn, "claim_plan_items", claim_id=c, plan=1, n=n, text=text, owner=owner,
             due_at=opened + timedelta(days=14), done_at=done)
    for at, actor, kind in ((opened, "customer:acme", "opened"),
                            (opened + 120 * M, "manager:t-maria", "plan_presented"),
                            (opened + 300 * M, "customer:acme", "plan_accepted")):
        _ins(conn, "claim_events", claim_id=c, at=at, actor=actor, kind=kind, detail={"plan": 1})
    opened = START - timedelta(days=40)
    g = _ins(conn, "claims", customer_id="globex", state="exited", manager_id="t-oliver",
             text="three breaches this quarter", plan=1, opened_at=opened,
             updated_at=START + M, notice_at=opened + timedelta(days=10),
             notice_effective=START)
    _ins(conn, "claim_plan_items", claim_id=g, plan=1, n=1, text="second technician at lon1",
         owner="t-oliver", due_at=opened + timedelta(days=30))
    _ins(conn, "claim_events", claim_id=g, at=START, actor="dispatcher", kind="exited",
         detail={})
    _ins(conn, "exit_surveys", claim_id=g, score=3, comment="the fixes came, too slowly",
         at=START + 60 * M)


if __name__ == "__main__":
    print(json.dumps(seed(sys.argv[1])))
