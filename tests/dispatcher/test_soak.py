"""Soak: two real dispatchers, each SIGKILLed at random moments, through 300 incidents.

A fleet of three sites and three customers is loaded with `hourglass load`; two `hourglass
dispatcher run` processes share one database with seconds-scale windows (a promise of
12-16 s, an acknowledgement window of 2 s). A driver opens incidents the way the collector
does, plays each technician through the HTTP API with their token (acknowledge, decline,
on-site, replaced, or silence), and reports parts healthy the way telemetry does, some in
time and some late. Meanwhile a killer SIGKILLs each dispatcher several times at seeded
random moments and restarts it. Afterwards every promise is checked from the database:
each timer fired once and did what its due time required, each escalation step at most
once per incident, never a third technician, each credit exactly once with the amount the
pure credit function gives, every open incident owned, and the auditor saw nothing
stranded.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from collector import telemetry
from collector.model import Detection
from collector.store import Directory, open_incident
from dispatcher.domain import credit
from dispatcher.service import auditor
from dispatcher.service.timers import fire_due
from dispatcher.store import tokens
from schemas.states import Role
from schemas.wake import wake
from tests.conftest import free_port, wait_port
from tests.dispatcher import world
from tests.dispatcher.procs import ROOT, policy_env, start_dispatcher

SEED = 6  # repeatable runs: the same plans and the same kill moments every time
INCIDENTS = 300
FEED_S = 20.0  # incidents open evenly over this time (15 a second)
ACK_S, RISK_LEAD_S, VERIFY_S = 2.0, 4.0, 3.0  # the windows, scaled from minutes to seconds
# Contract per customer: the promise (s) and the monthly fee of its hosts.
CUSTOMERS = {"acme": (12.0, "450.00"), "globex": (14.0, "900.00"), "initech": (16.0, "120.00")}
CREDIT_PERIOD_S = 3.0  # 5 % per started 3 s late, capped at 30 %: late fixes differ in amount
SITES = ("s1", "s2", "s3")
TECHS_PER_SITE = 4  # enough that the one transfer always finds someone
HOSTS_PER_SITE = 3  # per customer
KILLS_EACH = 4
KILL_WINDOW_S = (2.0, FEED_S + 8.0)  # kills land while incidents open and timers fall due
LATE_HEAL_S = (1.0, 8.0)  # a late fix lands this long after the deadline
# Clocks of different processes meet here: a dispatcher reads `now` once per batch of ten
# fires and the API once per tap before it takes the row lock, so on two busy cores a change
# and a fire may be recorded up to a few seconds out of their commit order. A stale timer
# must be justified by a change at most this long after it fired (a lost escalation has
# none at all), and a timer must not act this long after the incident moved on.
TOL = timedelta(seconds=3)
# The driver commits a fix within this of its telemetry time, so a timer fired later than
# this after a fix that beat its due time saw the fix and must not have acted.
FIX_SEEN = timedelta(seconds=1)
HTTP_TIMEOUT_S = 3.0
SETTLE_S = 25.0  # after the last planned move, the dispatchers catch up within this


def fleet_yaml() -> str:
    """Three sites (a manager, four disk technicians, disk spares), an executive, customers."""
    lines = ["sites:"]
    lines += [f"  - {{id: {s}, name: Site {s}, timezone: UTC, manager: m-{s}}}" for s in SITES]
    lines.append("technicians:")
    lines.append("  - {id: x-1, name: Exec, site: s1, role: executive}")
    for s in SITES:
        lines.append(f"  - {{id: m-{s}, name: Manager {s}, site: {s}, role: manager}}")
        lines += [f"  - {{id: t-{s}-{n}, name: Tech {s} {n}, site: {s}, role: technician,"
                  f" skills: [disk]}}" for n in range(1, TECHS_PER_SITE + 1)]
    lines.append("customers:")
    for c, (sla_s, fee) in CUSTOMERS.items():
        lines += [f"  - id: {c}", f"    name: {c.title()}",
                  f"    contract: {{sla_minutes: {sla_s / 60!r}, credit_percent: 5,"
                  f" credit_period_minutes: {CREDIT_PERIOD_S / 60!r}, credit_cap_percent: 30}}",
                  "    hosts:"]
        lines += [f"      - {{id: {c}-{s}-{n}, site: {s}, monthly_fee: {fee}}}"
                  for s in SITES for n in range(HOSTS_PER_SITE)]
    lines.append("spares:")  # a spare is reserved at dispatch; plenty, so none runs out
    lines += [f"  - {{site: {s}, part: SOAK-8T, kind: disk, count: {INCIDENTS}}}" for s in SITES]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Plan:
    """What the people and the telemetry do about one incident (seconds are relative)."""

    jobs: tuple[str, str]  # first and second technician: ack, ignore or decline
    ack_after: float  # after dispatch
    on_site_after: float  # after acknowledging
    replace_after: float  # after arriving
    heal_after: float  # after "replaced"; past VERIFY_S the job reopens first
    fallback_heal: float | None  # past the deadline, if no technician fixed it by then


def make_plan(rnd: random.Random) -> Plan:
    """A seeded mix of prompt, slow, silent and declining technicians."""
    first = rnd.choices(["ack", "ignore", "decline"], [0.55, 0.3, 0.15])[0]
    second = rnd.choices(["ack", "ignore"], [0.6, 0.4])[0]
    slow = rnd.random() < 0.3  # arrives near or past the deadline: risk, breach, credit
    return Plan(
        jobs=(first, second), ack_after=rnd.uniform(0.1, 1.2),
        on_site_after=rnd.uniform(6.0, 16.0) if slow else rnd.uniform(0.2, 1.5),
        replace_after=rnd.uniform(0.2, 1.5),
        heal_after=rnd.uniform(VERIFY_S + 1, VERIFY_S + 3) if rnd.random() < 0.15
        else rnd.uniform(0.2, 1.0),
        fallback_heal=rnd.uniform(*LATE_HEAL_S) if rnd.random() < 0.6 else None)


@dataclass
class Opened:
    """An incident the driver opened."""

    id: int
    host: str
    slot: str
    detected_at: datetime
    deadline: datetime
    plan: Plan
    healed_at: datetime | None = None


@dataclass
class Dispatchers:
    """The two dispatcher processes, killed and restarted by the killer thread."""

    url: str
    logs: Path
    ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: list[int] = field(default_factory=lambda: [0, 0])
    policy: dict[str, str] = field(default_factory=lambda: policy_env(ACK_S, RISK_LEAD_S,
                                                                      VERIFY_S))

    def start(self, k: int) -> subprocess.Popen[bytes]:
        """(Re)start dispatcher k on its own port."""
        return start_dispatcher(self.url, self.logs / f"dispatcher-{k}.log", self.policy,
                                self.ports[k])

    def killer(self, stop: threading.Event, t0: float) -> None:
        """SIGKILL each dispatcher KILLS_EACH times at seeded moments; restart it at once."""
        rnd = random.Random(SEED + 1)
        moments = sorted((rnd.uniform(*KILL_WINDOW_S), k) for k in (0, 1)
                         for _ in range(KILLS_EACH))
        for at, k in moments:
            if stop.wait(max(0.0, at - (time.monotonic() - t0))):
                return
            self.procs[k].send_signal(signal.SIGKILL)
            self.procs[k].wait()
            self.kills[k] += 1
            stop.wait(rnd.uniform(0.1, 1.0))  # down a moment: the other one carries on
            self.procs[k] = self.start(k)


class Driver:
    """Opens incidents like the collector, acts like technicians and telemetry."""

    def __init__(self, url: str, ports: list[int], people: dict[str, str]) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.directory = Directory()
        self.directory.reload(self.conn)
        self.http = httpx.Client(timeout=HTTP_TIMEOUT_S)
        self.bases = [f"http://127.0.0.1:{p}" for p in ports]
        self.tokens = people
        self.rnd = random.Random(SEED)  # the plans only, so they are the same every run
        self.route = random.Random(SEED + 2)  # which dispatcher a tap goes to first
        self.opened: dict[int, Opened] = {}
        self.answered: dict[tuple[int, str], int] = {}  # (job, action) -> HTTP status
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.retries = 0
        self.seq: Counter[str] = Counter()

    def open(self, n: int) -> None:
        """Incident n: a disk fails on a host, detected now; stored as the collector does."""
        host = sorted(self.directory.hosts)[n % len(self.directory.hosts)]
        slot, serial, now = f"bay{n}", f"SOAK{n:04d}", datetime.now(UTC)
        with self.conn.transaction():
            self.component(host, f"disk:{serial}", slot, serial, "failed", now)
            got = open_incident(self.conn, self.directory, Detection(
                host, f"disk:{serial}", "disk", "smart_failed", now, "smart_failed", slot,
                serial, {"smart_status": "FAILED"}, self.seq[host]))
            wake(self.conn, "ingest")
        assert got is not None
        sla = timedelta(minutes=self.directory.hosts[host].sla_minutes)
        self.opened[got] = Opened(got, host, slot, now, now + sla, make_plan(self.rnd))

    def component(self, host: str, cid: str, slot: str, serial: str, status: str,
                  at: datetime) -> None:
        """One component status as the collector stores telemetry (newer seq wins)."""
        self.seq[host] += 1
        self.conn.execute(
            "INSERT INTO components (host_id, id, kind, slot, serial, status, failure,"
            " status_seq, status_ts, last_seen) VALUES (%s, %s, 'disk', %s, %s, %s, %s, %s,"
            " %s, now())" + telemetry.STATUS_CONFLICT,
            (host, cid, slot, serial, status, "smart_failed" if status == "failed" else None,
             self.seq[host], at))

    def heal(self, i: Opened) -> None:
        """Telemetry reports a new disk healthy in the failed one's slot."""
        if i.healed_at is None:
            i.healed_at = datetime.now(UTC)
            serial = f"NEW{i.id:05d}"
            with self.conn.transaction():
                self.component(i.host, f"disk:{serial}", i.slot, serial, "ok", i.healed_at)
                wake(self.conn, "ingest")

    def post(self, job: int, tech: str, action: str, body: dict[str, str] | None) -> None:
        """The technician's tap: to either dispatcher, retried with the same Idempotency-Key."""
        if (job, action) in self.answered:
            return
        headers = {"Authorization": f"Bearer {self.tokens[tech]}",
                   "Idempotency-Key": f"soak-{job}-{action}"}
        for base in self.route.sample(self.bases, 2):
            try:
                r = self.http.post(f"{base}/api/v1/jobs/{job}/{action}", json=body,
                                   headers=headers)
            except httpx.TransportError:  # that dispatcher is down: the other one
                self.retries += 1
                continue
            self.statuses[(action, r.status_code)] += 1
            self.answered[(job, action)] = r.status_code
            return

    def step(self, now: datetime) -> None:
        """Every move that is due: the technicians' taps, then the telemetry."""
        jobs = self.conn.execute(
            "SELECT j.id, j.incident_id, j.technician_id, j.state, j.dispatched_at,"
            " j.acknowledged_at, j.on_site_at, j.replaced_at, (SELECT count(*) FROM jobs p"
            " WHERE p.incident_id = j.incident_id AND p.id < j.id) FROM jobs j WHERE j.state"
            " IN ('dispatched', 'acknowledged', 'on_site', 'replaced')").fetchall()
        for job, incident, tech, state, dispatched, acked, on_site, replaced, nth in jobs:
            i = self.opened[incident]
            p, s = i.plan, timedelta(seconds=1)
            what = p.jobs[min(nth, 1)]
            if state == "dispatched" and what != "ignore" and now >= dispatched + p.ack_after * s:
                self.post(job, tech, "acknowledge" if what == "ack" else "decline",
                          None if what == "ack" else {"reason": "on another job"})
            elif state == "acknowledged" and now >= acked + p.on_site_after * s:
                self.post(job, tech, "on-site", None)
            elif state == "on_site" and replaced is None and \
                    now >= on_site + p.replace_after * s:
                self.post(job, tech, "replaced", {"serial": f"NEW{incident:05d}"})
            if replaced is not None and now >= replaced + p.heal_after * s:
                self.heal(i)  # the new disk reports in (after a reopen, too)
        for i in self.opened.values():
            late = i.plan.fallback_heal
            if late is not None and now >= i.deadline + timedelta(seconds=late):
                self.heal(i)  # fixed without a technician's taps (the manager did it)

    def late(self) -> set[int]:
        """The incidents whose new part telemetry reported after the deadline."""
        return {o.id for o in self.opened.values() if o.healed_at and o.healed_at > o.deadline}

    def run(self, t0: float) -> float:
        """Open incidents evenly over FEED_S while acting; return when every move is made."""
        opened = 0
        last_move = FEED_S + max(s for s, _ in CUSTOMERS.values()) + LATE_HEAL_S[1] + 1.0
        while (elapsed := time.monotonic() - t0) < last_move:
            while opened < INCIDENTS and opened * FEED_S / INCIDENTS <= elapsed:
                self.open(opened)
                opened += 1
            self.step(datetime.now(UTC))
            time.sleep(0.05)  # 20 rounds a second: taps land well inside the 2-s window
        return elapsed


@pytest.fixture
def soak_db(pg_url: str, tmp_path: Path) -> str:
    """The fleet loaded with the real `hourglass load`."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(fleet_yaml())
    out = subprocess.run([sys.executable, "-m", "hourglass.cli", "load", str(fleet)], cwd=ROOT,
                         env={**os.environ, "HOURGLASS_DATABASE_URL": pg_url},
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return pg_url


@pytest.fixture
def dispatchers(soak_db: str, tmp_path: Path) -> Iterator[Dispatchers]:
    """Two running dispatchers; stopped afterwards, whatever happened."""
    d = Dispatchers(soak_db, tmp_path, [free_port(), free_port()])
    d.procs = [d.start(0), d.start(1)]
    try:
        for port in d.ports:
            wait_port(port, timeout=30)
        yield d
    finally:
        for p in d.procs:
            if p.poll() is None:
                p.terminate()
        for p in d.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def unsettled(conn: psycopg.Connection[Any]) -> str:
    """What the dispatchers still owe: due timers unfired, changes unplanned, fixes unverified."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM timers WHERE fired_at IS NULL"
        "        AND due_at < now() - interval '1 second'),"
        " (SELECT count(*) FROM incidents WHERE planned_at IS DISTINCT FROM updated_at"
        "  AND state NOT IN ('verified', 'closed')),"
        " (SELECT count(*) FROM incidents i WHERE state NOT IN ('verified', 'closed')"
        "  AND EXISTS (SELECT 1 FROM components c WHERE c.host_id = i.host_id"
        "  AND c.status = 'ok' AND c.slot = i.slot AND c.status_ts > i.detected_at))"
    ).fetchone()
    assert row is not None
    owed = zip(("due timers unfired", "changes unplanned", "fixes unverified"), row, strict=True)
    return ", ".join(f"{n} {what}" for what, n in owed if n)


@pytest.mark.beside  # long, mostly waiting: scripts/test runs it beside the property tests
@pytest.mark.timeout(150)
def test_two_dispatchers_killed_at_random_keep_every_promise_once(
        dispatchers: Dispatchers, tmp_path: Path) -> None:
    url = dispatchers.url
    with psycopg.connect(url, autocommit=True) as conn:
        people = {r[0]: tokens.create(conn, Role.TECHNICIAN, None, r[0]) for r in conn.execute(
            "SELECT id FROM technicians WHERE role = 'technician'").fetchall()}
    driver = Driver(url, dispatchers.ports, people)
    stop = threading.Event()
    t0 = time.monotonic()
    killer = threading.Thread(target=dispatchers.killer, args=(stop, t0), daemon=True)
    killer.start()
    try:
        ran = driver.run(t0)
    finally:
        stop.set()
        killer.join(timeout=15)
    settle_t0 = time.monotonic()
    while (behind := unsettled(driver.conn)) and time.monotonic() - settle_t0 < SETTLE_S:
        time.sleep(0.25)
    caught_up = time.monotonic() - settle_t0
    for port in dispatchers.ports:
        wait_port(port, timeout=30)  # a dispatcher restarted at the end is serving again
    gauges = [scrape(driver.http, base) for base in driver.bases]
    ended = datetime.now(UTC)
    for p in dispatchers.procs:
        p.terminate()
    for p in dispatchers.procs:
        p.wait(timeout=10)
    facts = collect(driver.conn)
    summary = summarize(facts, driver, dispatchers, ran, caught_up)
    print("\n" + summary)
    (tmp_path / "summary.txt").write_text(summary)

    problems = [f"not caught up {SETTLE_S:g} s after the last move: {behind}"] if behind else []
    problems += (fired_once(facts) + steps_once(facts) + acted_where_due(facts, ended)
                + credits_exact(facts, driver.late()) + owned(facts) + http_sane(driver))
    logs = "".join((tmp_path / f"dispatcher-{k}.log").read_text() for k in (0, 1))
    problems += [f"dispatcher log: {line}" for line in logs.splitlines()
                 if "Traceback" in line or "without a next action" in line][:10]
    audit = auditor.run(driver.conn, datetime.now(UTC))
    problems += [f"auditor: incident {s.incident} ({s.state}) has no next action"
                 for s in audit.stranded]
    problems += [f"/metrics of dispatcher {k}: {g}" for k, g in enumerate(gauges)
                 if g != {"hourglass_incidents_without_next_action": 0.0,
                          "hourglass_incidents_without_next_action_oldest_seconds": 0.0}]
    driver.conn.close()
    assert sum(dispatchers.kills) == 2 * KILLS_EACH
    assert len(driver.opened) == INCIDENTS
    assert not problems, "\n".join(problems[:40])


def scrape(http: httpx.Client, base: str) -> dict[str, float]:
    """The auditor's gauges from one dispatcher's /metrics."""
    text = http.get(f"{base}/metrics").text
    return {k: float(v) for k, v in re.findall(
        r"^(hourglass_incidents_without_next_action\w*) (\S+)$", text, re.MULTILINE)}


@dataclass(frozen=True)
class Facts:
    """The database after the run, as plain values."""

    incidents: dict[int, dict[str, Any]]
    jobs: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    events: list[dict[str, Any]]
    credits: list[dict[str, Any]]


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    cur = conn.execute(sql)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def collect(conn: psycopg.Connection[Any]) -> Facts:
    """Read everything the checks need."""
    incidents = _rows(conn, "SELECT i.*, h.monthly_fee, c.credit_percent,"
                            " c.credit_period_minutes, c.credit_cap_percent FROM incidents i"
                            " JOIN hosts h ON h.id = i.host_id"
                            " JOIN customers c ON c.id = i.customer_id")
    return Facts({i["id"]: i for i in incidents},
                 _rows(conn, "SELECT * FROM jobs ORDER BY id"),
                 _rows(conn, "SELECT * FROM timers ORDER BY id"),
                 _rows(conn, "SELECT * FROM incident_events ORDER BY id"),
                 _rows(conn, "SELECT * FROM credits ORDER BY id"))


def verified_at_record(i: dict[str, Any]) -> datetime | None:
    """When a dispatcher recorded the verification (its pass's now), if it did."""
    return i["updated_at"] if i["state"] == "verified" else None


def fired_once(f: Facts) -> list[str]:
    """Each timer acted at most once, never early, and its effect is on record exactly once."""
    by_timer = Counter(int(e["detail"]["timer"]) for e in f.events if "timer" in e["detail"])
    out = [f"timer {t} has {n} events (fired twice)" for t, n in by_timer.items() if n > 1]
    for t in f.timers:
        if t["fired_at"] is not None and t["fired_at"] < t["due_at"]:
            out.append(f"timer {t['id']} ({t['kind']}) fired early")
        effects = by_timer.get(t["id"], 0)
        if t["outcome"] == "acted" and effects != 1:
            out.append(f"timer {t['id']} ({t['kind']}, incident {t['incident_id']}) acted"
                       f" with {effects} events")
        if t["outcome"] in ("stale", "nobody", None) and effects:
            out.append(f"timer {t['id']} ({t['kind']}) {t['outcome']} but has events")
        if t["outcome"] == "nobody":
            out.append(f"timer {t['id']} found no one to tell, though every site has a manager")
    return out


def steps_once(f: Facts) -> list[str]:
    """Each escalation step once per incident (a breach foreseen: once per dispatch, so per
    job); one transfer; never a third technician."""
    steps = Counter((e["incident_id"], e["kind"], e["detail"].get("step")
                     if e["detail"].get("step") != "breach_foreseen"
                     else f"breach_foreseen job {e['detail'].get('job')}")
                    for e in f.events if e["kind"] in ("escalated", "reassigned", "reopened"))
    out = [f"incident {i}: {kind} {step or ''} recorded {n} times"
           for (i, kind, step), n in steps.items() if n > 1]
    techs: dict[int, list[str]] = {}
    for j in f.jobs:
        techs.setdefault(j["incident_id"], []).append(j["technician_id"])
    out += [f"incident {i}: technicians {t}" for i, t in techs.items()
            if len(t) > 2 or len(set(t)) != len(t)]
    for e in f.events:
        step = e["detail"].get("step")
        if e["kind"] == "escalated" and step != "breach":
            want = f"m-{f.incidents[e['incident_id']]['site_id']}"  # the site's manager
        elif e["kind"] == "escalated":
            want = "x-1"  # the executive on duty
        else:
            continue
        if e["detail"].get("to") != want:
            out.append(f"incident {e['incident_id']}: {step} escalation went to"
                       f" {e['detail'].get('to')}, not {want}")
    told = {i for (i, kind, step) in steps if kind == "escalated" and step == "breach"}
    out += [f"incident {i['id']}: fixed late but the executive was never told"
            for i in f.incidents.values()
            if i["verified_at"] and i["verified_at"] > i["deadline"] and i["id"] not in told]
    for (i, kind, step), _ in steps.items():
        if kind == "escalated" and step == "ack_timeout" and len(techs.get(i, [])) < 2:
            # Allowed only when the one transfer found no one; this fleet always has someone.
            out.append(f"incident {i}: escalated on the first missed acknowledgement")
    return out


def _left_dispatched(j: dict[str, Any]) -> datetime | None:
    times = [t for t in (j["acknowledged_at"], j["on_site_at"], j["finished_at"]) if t]
    return min(times) if times else None


def _moved_on(t: dict[str, Any], verified: datetime | None, jobs: dict[int, dict[str, Any]],
              mine: list[dict[str, Any]]) -> datetime | None:
    """When the incident first stopped needing what the timer watches, if it did."""
    times: list[datetime | None] = [verified]
    if t["kind"] == "ack_timeout":
        times.append(_left_dispatched(jobs[int(t["guard"].split("|")[0].removeprefix("job="))]))
    elif t["kind"] == "risk":
        times += [j["on_site_at"] for j in mine]
    found = [x for x in times if x is not None]
    return min(found) if found else None


def acted_where_due(f: Facts, ended: datetime) -> list[str]:
    """Every timer due fired; it acted unless the incident had moved on; every job watched."""
    jobs = {j["id"]: j for j in f.jobs}
    out: list[str] = []
    planned = Counter((t["incident_id"], t["kind"]) for t in f.timers)
    risk_lead = timedelta(seconds=RISK_LEAD_S)
    for i in f.incidents.values():
        n, verified = i["id"], verified_at_record(i)
        arrived = [j["on_site_at"] for j in f.jobs if j["incident_id"] == n and j["on_site_at"]]
        settled_by = min([*arrived, *([verified] if verified else [])], default=None)
        # At most one of each (no pauses here). Due where the incident still needed it at
        # its time: no one on site and no verified fix by the risk time, none by the deadline
        # (a quick technician may be on site before the pass that dispatched them plans).
        if verified and not any(planned[(n, k)] for k in ("risk", "breach", "ack_timeout")):
            continue  # verified before any plan: the known lag bug (the xfail test below)
        for kind, at in (("risk", i["deadline"] - risk_lead), ("breach", i["deadline"])):
            want = 1 if settled_by is None or settled_by > at else None
            if planned[(n, kind)] > 1 or (want and planned[(n, kind)] != want):
                out.append(f"incident {n}: {planned[(n, kind)]} {kind} timers")
    for t in f.timers:
        i = f.incidents[t["incident_id"]]
        fired, verified = t["fired_at"], verified_at_record(i)
        if fired is None:
            if t["due_at"] < ended - timedelta(seconds=2):
                out.append(f"timer {t['id']} ({t['kind']}) of incident {i['id']} never fired")
            continue
        change = _moved_on(t, verified, jobs, [j for j in f.jobs if j["incident_id"] == i["id"]])
        if t["outcome"] == "stale" and (change is None or change > fired + TOL):
            out.append(f"timer {t['id']} ({t['kind']}) of incident {i['id']} was stale though"
                       " nothing had changed: an escalation was lost")
        if t["outcome"] == "acted" and change is not None and change < fired - TOL:
            out.append(f"timer {t['id']} ({t['kind']}) of incident {i['id']} acted at {fired}"
                       f" though the incident had moved on at {change}")
        fix = i["verified_at"]
        if t["outcome"] == "acted" and fix and fix <= t["due_at"] and fix < fired - FIX_SEEN:
            out.append(f"timer {t['id']} ({t['kind']}) of incident {i['id']} acted at {fired}"
                       f" though telemetry proved the fix at {fix}, before it was due")
    watched = {int(t["guard"].split("|")[0].removeprefix("job="))
               for t in f.timers if t["kind"] == "ack_timeout"}
    out += [f"job {j['id']} (incident {j['incident_id']}) was never acknowledged and no timer"
            " watched it" for j in f.jobs if j["id"] not in watched
            and _left_dispatched(j) is None]
    return out


def credits_exact(f: Facts, late: set[int]) -> list[str]:
    """Credits exactly for the fixes telemetry reported `late`, each with the pure amount."""
    out: list[str] = []
    by_incident = Counter(c["incident_id"] for c in f.credits)
    out += [f"incident {i}: {n} credits" for i, n in by_incident.items() if n > 1]
    late_db = {i["id"] for i in f.incidents.values()
               if i["verified_at"] and i["verified_at"] > i["deadline"]}
    if late != late_db:
        out.append(f"late fixes reported {sorted(late ^ late_db)} differ from those verified")
    if set(by_incident) != late:
        out.append(f"credited {sorted(set(by_incident) ^ late)} differ from the late fixes")
    issued = Counter(e["incident_id"] for e in f.events if e["kind"] == "credit_issued")
    for c in f.credits:
        i = f.incidents[c["incident_id"]]
        policy = credit.CreditPolicy(Decimal(i["credit_percent"]),
                                     float(i["credit_period_minutes"]),
                                     Decimal(i["credit_cap_percent"]))
        if i["verified_at"] is None:
            out.append(f"incident {i['id']}: credited but never verified")
            continue
        want = credit.compute(i["deadline"], i["verified_at"], Decimal(i["monthly_fee"]), policy)
        got = (c["amount"], c["percent"], c["periods"])
        if want is None or got != (want.amount, want.percent, want.periods):
            out.append(f"incident {i['id']}: credit {got}, the credit function gives {want}")
        if issued[i["id"]] != 1:
            out.append(f"incident {i['id']}: {issued[i['id']]} credit_issued events")
    return out


def owned(f: Facts) -> list[str]:
    """Each open incident has exactly one live job, or waits escalated; a fixed one has none."""
    live = Counter(j["incident_id"] for j in f.jobs
                   if j["state"] in ("dispatched", "acknowledged", "on_site", "replaced"))
    escalated = {e["incident_id"] for e in f.events if e["kind"] == "escalated"}
    out: list[str] = []
    for i in f.incidents.values():
        n = live[i["id"]]
        if i["state"] == "verified" and n:
            out.append(f"incident {i['id']} is verified with {n} live jobs")
        elif i["state"] != "verified" and n != 1 and not (n == 0 and i["id"] in escalated):
            out.append(f"incident {i['id']} ({i['state']}) has {n} live jobs, not escalated")
    return out


def http_sane(d: Driver) -> list[str]:
    """The API answered every tap with a success or a clear 4xx, never a 5xx."""
    return [f"{action} answered {code} {n} times" for (action, code), n in d.statuses.items()
            if code >= 500 or code in (400, 401, 403, 404, 422)]


def summarize(f: Facts, d: Driver, ds: Dispatchers, ran: float, caught_up: float) -> str:
    """The figures the lead quotes."""
    steps = Counter(e["detail"].get("step", "") for e in f.events if e["kind"] == "escalated")
    kinds = Counter(e["kind"] for e in f.events)
    outcomes = Counter((t["kind"], t["outcome"]) for t in f.timers)
    late = sorted((t["fired_at"] - t["due_at"]).total_seconds()
                  for t in f.timers if t["fired_at"] is not None)
    states = Counter(i["state"] for i in f.incidents.values())
    amount = sum((c["amount"] for c in f.credits), Decimal(0))
    in_time = sum(1 for i in f.incidents.values()
                  if i["verified_at"] and i["verified_at"] <= i["deadline"])
    planned = {t["incident_id"] for t in f.timers}
    unplanned = sum(1 for i in f.incidents.values() if i["id"] not in planned)
    told = {e["incident_id"] for e in f.events
            if e["kind"] == "escalated" and e["detail"].get("step") == "breach"}
    untold = sum(1 for i in f.incidents.values() if i["id"] not in told
                 and (i["verified_at"] is None or i["verified_at"] > i["deadline"]))
    p99 = late[min(len(late) - 1, int(0.99 * len(late)))] if late else float("nan")
    return "\n".join([
        f"soak: {len(f.incidents)} incidents in {ran:.0f} s, caught up {caught_up:.1f} s later;"
        f" SIGKILLs {ds.kills[0]} + {ds.kills[1]}",
        f"soak: incidents by state {dict(sorted(states.items()))}",
        f"soak: escalations {dict(sorted(steps.items()))}; reassigned {kinds['reassigned']},"
        f" reopened {kinds['reopened']}",
        f"soak: credits {len(f.credits)} totalling {amount}; verified in time {in_time}",
        f"soak: breached but the executive not told yet {untold};"
        f" verified before any timer was planned {unplanned}",
        f"soak: timers {len(f.timers)}, fired {len(late)}, by outcome"
        f" {dict(sorted((f'{k}/{o}', n) for (k, o), n in outcomes.items()))};"
        f" lateness p50 {late[len(late) // 2] if late else float('nan'):.2f} s,"
        f" p99 {p99:.2f} s, max {late[-1] if late else float('nan'):.2f} s",
        f"soak: HTTP taps {dict(sorted((f'{a} {c}', n) for (a, c), n in d.statuses.items()))};"
        f" retried on the other dispatcher {d.retries}",
    ])


def test_the_checks_catch_doubles_and_losses() -> None:
    """The soak's checks are not vacuous: each names a doubled or lost promise."""
    t = datetime(2026, 1, 1, tzinfo=UTC)
    sec = timedelta(seconds=1)
    incident = {"id": 1, "state": "on_site", "site_id": "s1", "updated_at": t,
                "deadline": t + 12 * sec, "verified_at": None, "monthly_fee": Decimal(100),
                "credit_percent": Decimal(5), "credit_period_minutes": 0.05,
                "credit_cap_percent": Decimal(30)}
    job = {"incident_id": 1, "state": "on_site", "acknowledged_at": t + sec,
           "on_site_at": None, "finished_at": None}
    jobs = [{**job, "id": n, "technician_id": f"t-s1-{n}"} for n in (1, 2, 3)]
    timers = [{"id": 5, "incident_id": 1, "kind": "risk", "guard": "|p0", "due_at": t,
               "created_at": t, "fired_at": t, "outcome": "stale"},
              {"id": 6, "incident_id": 1, "kind": "breach", "guard": "|p0", "due_at": t,
               "created_at": t, "fired_at": t, "outcome": "acted"}]
    breach = {"incident_id": 1, "kind": "escalated", "detail": {"step": "breach", "to": "x-1",
                                                                "timer": 6}}
    credit_row = {"incident_id": 1, "amount": Decimal(5), "percent": Decimal(5), "periods": 1}
    f = Facts({1: incident}, jobs, timers, [breach, breach], [credit_row, credit_row])
    assert fired_once(f) == ["timer 6 has 2 events (fired twice)",
                             "timer 6 (breach, incident 1) acted with 2 events"]
    assert steps_once(f) == ["incident 1: escalated breach recorded 2 times",
                             "incident 1: technicians ['t-s1-1', 't-s1-2', 't-s1-3']"]
    assert [p for p in acted_where_due(f, t) if "lost" in p] == [
        "timer 5 (risk) of incident 1 was stale though nothing had changed: an escalation"
        " was lost"]
    kept = {**incident, "state": "verified", "verified_at": t + 7 * sec,
            "updated_at": t + 12 * sec}  # fixed at 7 s, verification recorded at 12 s
    late_breach = {**timers[1], "due_at": t + 12 * sec, "fired_at": t + 13 * sec}
    found = acted_where_due(Facts({1: kept}, [], [late_breach], [], []), t + 20 * sec)
    assert [p for p in found if "telemetry" in p] == [
        f"timer 6 (breach) of incident 1 acted at {t + 13 * sec} though telemetry proved the"
        f" fix at {t + 7 * sec}, before it was due"]
    assert owned(f) == ["incident 1 (on_site) has 3 live jobs, not escalated"]
    # Verified 4 s late: two started 3-s periods, 10 % of 100; credited twice, 5.00 each.
    fixed = {**incident, "state": "verified", "verified_at": t + 16 * sec}
    f = Facts({1: fixed}, [], [], [], [credit_row, credit_row])
    assert credits_exact(f, {1}) == ["incident 1: 2 credits"] + [
        "incident 1: credit (Decimal('5'), Decimal('5'), 1), the credit function gives"
        " CreditDecision(amount=Decimal('10.00'), percent=Decimal('10'), periods=2,"
        " late_seconds=4.0)", "incident 1: 0 credit_issued events"] * 2
    assert credits_exact(f, set())[1:3] == ["late fixes reported [1] differ from those verified",
                                            "credited [1] differ from the late fixes"]


# What the soak found, replayed at explicit times on a real database.

def _breaches(conn: psycopg.Connection[Any], incident: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT detail->>'to' FROM incident_events WHERE incident_id = %s AND kind ="
        " 'escalated' AND detail->>'step' = 'breach'", (incident,))]


def test_a_fix_proven_before_the_deadline_but_verified_after_it_is_no_breach(
        pg_url: str) -> None:
    """A pass verifies, then plans and fires; a fix stored in between must stop the breach."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        world.setup_fleet(conn)
        i = world.open_incident(conn)
        world.tick(pg_url, world.at(0))
        world.heal(conn, i, world.at(59.5))  # telemetry proves the fix 30 s before the deadline ...
        # ... and a lagging pass fires its timers before it verifies: those due before the
        # fix act, the breach (due after it) does not.
        assert fire_due(conn, world.P, world.at(60.5), "lagging") == 3
        outcomes = conn.execute("SELECT kind, outcome FROM timers WHERE incident_id = %s"
                                " ORDER BY due_at", (i,)).fetchall()
        assert outcomes == [("ack_timeout", "acted"), ("risk", "acted"), ("breach", "stale")]
        assert _breaches(conn, i) == []
        world.tick(pg_url, world.at(61))
        state = conn.execute("SELECT state, verified_at FROM incidents WHERE id = %s",
                             (i,)).fetchone()
        assert state == ("verified", world.at(59.5))
        assert conn.execute("SELECT count(*) FROM credits").fetchone() == (0,)


def test_a_late_fix_verified_before_the_breach_timer_fires_still_escalates(
        pg_url: str) -> None:
    """The promise broke at the deadline, whenever a dispatcher gets to look."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        world.setup_fleet(conn)
        i = world.open_incident(conn)
        world.tick(pg_url, world.at(0))
        world.heal(conn, i, world.at(61))  # fixed a minute late; no pass ran since minute 0
        world.tick(pg_url, world.at(62))
        assert conn.execute("SELECT count(*) FROM credits").fetchone() == (1,)
        assert _breaches(conn, i) == ["t-eve"]
