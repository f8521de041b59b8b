"""The collector's PostgreSQL adapter: one transaction per batch, dedup by (host, seq)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector import (
    births,
    copybin,
    findings,
    retention,
    sqlarrays,
    sweep,
    teleids,
    telemetry,
    widecopy,
)
from collector.facility import FacilityParams
from collector.liveness import Hold
from collector.model import DeadLetter, Detection, Message
from collector.rules import detect
from collector.stateful import RuleParams
from collector.timestamps import parse_ts
from schemas.topics import topic
from schemas.wake import wake

Conn = psycopg.Connection[tuple[Any, ...]]
PARTITION_LOCK = retention.PARTITION_LOCK


@dataclass(frozen=True)
class HostInfo:
    """What the collector must know of a host to accept its messages and open incidents."""

    site: str
    customer: str
    sla_minutes: float


class Directory:
    """Cache of the fleet's hosts, reloaded when an unknown host shows up (at most every 5 s)."""

    RELOAD_S = 5.0  # a newly loaded fleet file is seen within this time

    def __init__(self) -> None:
        self.hosts: dict[str, HostInfo] = {}
        self._loaded = 0.0

    def lookup(self, conn: Conn, host: str) -> HostInfo | None:
        """The host's info, reloading the cache once if it is missing."""
        if host not in self.hosts and time.monotonic() - self._loaded > self.RELOAD_S:
            self.reload(conn)
        return self.hosts.get(host)

    def reload(self, conn: Conn) -> None:
        """Read all hosts with their contract's SLA."""
        rows = conn.execute(
            "SELECT h.id, h.site_id, h.customer_id, c.sla_minutes"
            " FROM hosts h JOIN customers c ON c.id = h.customer_id"
        ).fetchall()
        self.hosts = {r[0]: HostInfo(r[1], r[2], float(r[3])) for r in rows}
        self._loaded = time.monotonic()


@dataclass(frozen=True)
class BatchResult:
    """What one batch did, for logs and metrics."""

    accepted: int
    duplicates: int
    dead: int
    rows: int
    opened: list[int]
    predicted: list[int] = field(default_factory=list)
    dead_reasons: tuple[str, ...] = ()  # the stored dead letters' reasons, for their classes

    def __add__(self, other: BatchResult) -> BatchResult:
        """Both results together (a batch stored one message at a time)."""
        return BatchResult(self.accepted + other.accepted, self.duplicates + other.duplicates,
                           self.dead + other.dead, self.rows + other.rows,
                           self.opened + other.opened, self.predicted + other.predicted,
                           self.dead_reasons + other.dead_reasons)


EMPTY = BatchResult(0, 0, 0, 0, [])


def write_batch(
    conn: Conn, directory: Directory, messages: Sequence[Message], dead: Sequence[DeadLetter],
    params: RuleParams | None = None,
) -> BatchResult:
    """Store a batch in one transaction: claim keys, write only accepted messages' rows."""
    dead = list(dead)
    known: list[Message] = []
    for m in messages:
        info = directory.lookup(conn, m.host)
        if info is None:
            dead.append(refused(m, f"unknown host {m.host!r}: add it to the fleet file and run "
                                    "`hourglass load`"))
        elif info.site != m.site:
            dead.append(refused(m, f"host {m.host!r} belongs to site {info.site!r}, "
                                    f"not {m.site!r}"))
        else:
            known.append(m)
    unique = list({(m.host, m.seq): m for m in known}.values())
    unique.sort(key=lambda m: (m.host, m.seq))  # keys claimed in one order: no deadlock
    ids = teleids.resolve(conn, unique)  # committed before the batch: see collector.teleids
    with conn.transaction():
        accepted = _claim(conn, unique)
        fresh = [m for m in unique if (m.host, m.seq) in accepted]
        _reserve(conn, fresh)
        rows = _copy_readings(conn, fresh, ids)
        # The hosts' locks come after the bulk of the work (the COPY reads no host state):
        # a fleet's batches nearly always share a host or two, and a lock taken first made
        # a second collector wait out the first one's whole transaction.
        telemetry.lock_hosts(conn, (m.host for m in fresh))
        found: list[tuple[str, Detection]] = []
        for m in fresh:
            if m.kind != "telemetry":
                found += [("failure", d) for d in _apply(conn, m)]
        tele = [m for m in fresh if m.kind == "telemetry"]
        telemetry.apply(conn, tele)
        found += [f for m in fresh for f in detect(m)]
        found += findings.evaluate(conn, tele, params or RuleParams())
        findings.bmc_power(conn, tele)
        opened, predicted = _open(conn, directory, found)
        _dead_letters(conn, dead)
        if opened or fresh:
            wake(conn, "ingest")
    return BatchResult(len(fresh), len(known) - len(fresh), len(dead), rows, opened, predicted,
                       tuple(d.reason for d in dead))


def _open(conn: Conn, directory: Directory,
          found: Sequence[tuple[str, Detection]]) -> tuple[list[int], list[int]]:
    """Open an incident per failure and a prediction per prediction; the new ids of each."""
    opened: list[int] = []
    predicted: list[int] = []
    for klass, d in found:
        if klass == "failure":
            if i := open_incident(conn, directory, d):
                opened.append(i)
        elif p := findings.open_prediction(conn, d):
            predicted.append(p)
    return opened, predicted


def refused(m: Message, reason: str) -> DeadLetter:
    """A valid message the fleet does not allow, as a dead letter."""
    return DeadLetter(topic(m.site, m.host, m.kind), reason, m.payload, m.received_at)


def _claim(conn: Conn, messages: Sequence[Message]) -> set[tuple[str, int]]:
    """Insert the batch's (host, seq) keys; return the ones not seen before."""
    if not messages:
        return set()
    rows = conn.execute(
        "INSERT INTO ingest_keys (host_id, seq, kind)"
        " SELECT * FROM unnest(" + sqlarrays.NAMES + ", " + sqlarrays.INTS + ", "
        + sqlarrays.NAMES + ") AS u(h, s, k)"
        " WHERE NOT EXISTS (SELECT 1 FROM ingest_floor f WHERE f.host_id = u.h"
        "                   AND u.s <= f.seq)"  # pruned keys: a repeat from before dedup_days
        " ON CONFLICT DO NOTHING RETURNING host_id, seq",
        (sqlarrays.names([m.host for m in messages]), sqlarrays.ints([m.seq for m in messages]),
         sqlarrays.names([m.kind for m in messages])),
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def _reserve(conn: Conn, messages: Sequence[Message]) -> None:
    """Record the seqs births and online states name for their connection's last will."""
    wills = [(m.host, m.body["will_seq"], m.body.get("session")) for m in messages
             if m.kind in ("birth", "state") and isinstance(m.body.get("will_seq"), int)]
    if wills:
        conn.execute(
            "INSERT INTO ingest_reserved (host_id, seq, session)"
            " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            ([w[0] for w in wills], [w[1] for w in wills], [w[2] for w in wills]))


_TEXT = copybin.TextFields()


def _copy_readings(conn: Conn, messages: Iterable[Message], ids: teleids.Ids) -> int:
    """Write all telemetry readings with one binary COPY; the number of values."""
    if ids.wide:  # migration 019: one row per message
        data, rows, n = widecopy.encode(messages, ids.hosts, ids.rows)
        statement = ("COPY telemetry_rows (time, host, set_id, v, x, d)"
                     " FROM STDIN (FORMAT BINARY)")
    else:  # the narrow table (TimescaleDB, whose compression packs it better)
        data, n = copybin.encode(messages, _TEXT)
        rows = n
        statement = ("COPY telemetry (time, host_id, component, metric, value)"
                     " FROM STDIN (FORMAT BINARY)")
    if rows:
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(data)
    return n


_UPSERT_STATUS = """
INSERT INTO components (host_id, id, kind, slot, serial, status, failure, status_seq, status_ts,
                        last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
""" + telemetry.STATUS_CONFLICT

# An event changes status only if nothing newer from its host was stored: telemetry
# writes a component only when its state changes, so the component's own status_seq
# may be older than the last snapshot that confirmed it (collector/telemetry.py).
_UPSERT_EVENT_STATUS = _UPSERT_STATUS.rstrip() + """
  AND EXCLUDED.status_seq > COALESCE(
      (SELECT s.seq FROM host_state s WHERE s.host_id = EXCLUDED.host_id), 0)
"""


def _apply(conn: Conn, m: Message) -> list[Detection]:
    """Update inventory, component status and host state from one birth, event or state.

    Telemetry is applied for the whole batch at once by collector.telemetry.apply. Returns
    the failures a birth proves (parts gone since the previous birth).
    """
    b = m.body
    if m.kind == "birth":
        return births.apply(conn, m)
    if m.kind == "event":
        conn.execute(_UPSERT_EVENT_STATUS, (
            m.host, b["component"], b["component_kind"], b.get("slot"), b.get("serial"),
            b["status"], b.get("failure"), m.seq, parse_ts(b["detected_at"])))
        _touch_host(conn, m, "online", None, None)
    elif m.kind == "state":
        _state(conn, m)
    return []


def _state(conn: Conn, m: Message) -> None:
    """Online moves forward in seq; a last will counts only for the connection it belongs to.

    A will's seq was reserved when its connection opened, so it is older than what that
    connection sent since: it is matched by session, not ordered by seq.
    """
    b = m.body
    session = b.get("session")
    if b["state"] == "online":
        _touch_host(conn, m, "online", None, None)
        conn.execute("UPDATE host_state SET session = %s WHERE host_id = %s AND seq = %s",
                     (session, m.host, m.seq))
        conn.execute(_UPSERT_STATUS, (m.host, f"host:{m.host}", "host", None, None, "ok", None,
                                      m.seq, m.ts))
        return
    reason = b.get("reason", "lost")
    row = conn.execute("SELECT session, seq FROM host_state WHERE host_id = %s",
                       (m.host,)).fetchone()
    if row is not None:
        same = session is not None and row[0] == session
        newer = m.seq > row[1]
        if not (same or newer):
            return  # a will or stop of an older connection: the host has reconnected since
    conn.execute(
        "INSERT INTO host_state (host_id, state, seq, ts, offline_reason, session, last_message,"
        " offline_at) VALUES (%s, 'offline', %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (host_id) DO UPDATE SET"
        " state = 'offline', offline_reason = EXCLUDED.offline_reason,"
        " offline_at = EXCLUDED.offline_at, seq = GREATEST(host_state.seq, EXCLUDED.seq)",
        (m.host, m.seq, m.ts, reason, session, m.received_at, m.received_at),
    )
    conn.execute(
        "INSERT INTO components (host_id, id, kind, status, status_seq, status_ts)"
        " VALUES (%s, %s, 'host', %s, %s, %s) ON CONFLICT (host_id, id) DO UPDATE SET"
        " status = EXCLUDED.status, status_ts = EXCLUDED.status_ts,"
        " status_seq = GREATEST(components.status_seq, EXCLUDED.status_seq)",
        (m.host, f"host:{m.host}", "unknown" if reason == "shutdown" else "warning", m.seq,
         m.received_at),
    )


def _touch_host(conn: Conn, m: Message, state: str, reason: str | None,
                interval_s: float | None) -> None:
    """Record that the host spoke; the state only moves forward in seq."""
    conn.execute(
        "INSERT INTO host_state (host_id, state, seq, ts, interval_s, last_message, offline_reason)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (host_id) DO UPDATE SET"
        " state = CASE WHEN host_state.seq < EXCLUDED.seq THEN EXCLUDED.state"
        "              ELSE host_state.state END,"
        " offline_reason = CASE WHEN host_state.seq < EXCLUDED.seq THEN EXCLUDED.offline_reason"
        "              ELSE host_state.offline_reason END,"
        " ts = CASE WHEN host_state.seq < EXCLUDED.seq THEN EXCLUDED.ts ELSE host_state.ts END,"
        " seq = GREATEST(host_state.seq, EXCLUDED.seq),"
        " interval_s = COALESCE(EXCLUDED.interval_s, host_state.interval_s),"
        " last_message = CASE WHEN EXCLUDED.state = 'online'"
        "   THEN GREATEST(host_state.last_message, EXCLUDED.last_message)"
        "   ELSE host_state.last_message END",
        (m.host, state, m.seq, m.ts, interval_s, m.received_at, reason),
    )


def open_incident(conn: Conn, directory: Directory, d: Detection) -> int | None:
    """Open one incident for a detection; None when one is already open for it."""
    info = directory.hosts[d.host]
    deadline = d.detected_at + timedelta(minutes=info.sla_minutes)
    row = conn.execute(
        "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure, slot,"
        " serial, detected_at, deadline, sla_minutes, evidence)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (host_id, component, failure) WHERE state NOT IN {sweep.FIXED_SQL}"
        " DO NOTHING RETURNING id",
        (d.host, info.site, info.customer, d.component, d.kind, d.failure, d.slot, d.serial,
         d.detected_at, deadline, info.sla_minutes, Jsonb(d.evidence)),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "INSERT INTO incident_events (incident_id, at, actor, kind, detail)"
        " VALUES (%s, %s, 'collector', 'detected', %s)",
        (row[0], d.detected_at, Jsonb({"rule": d.rule, "component": d.component,
                                       "failure": d.failure, "seq": d.seq,
                                       "evidence": d.evidence})),
    )
    return int(row[0])


def _dead_letters(conn: Conn, dead: Sequence[DeadLetter]) -> None:
    if dead:
        conn.cursor().executemany(
            "INSERT INTO dead_letters (received_at, topic, reason, payload)"
            " VALUES (%s, %s, %s, %s)",
            [(d.received_at, d.topic, d.reason, d.payload) for d in dead],
        )


def sweep_host_down(conn: Conn, directory: Directory, grace: int, now: datetime,
                    params: FacilityParams | None = None) -> list[int]:
    """Open host_down incidents for hosts silent for `grace` intervals (lost, not shut down).

    Racks whose hosts went silent together get one facility incident instead (collector.sweep).
    """
    return sweep_hosts(conn, directory, grace, now, params).host_down


def sweep_hosts(conn: Conn, directory: Directory, grace: int, now: datetime,
                params: FacilityParams | None = None,
                hold: Hold | None = None) -> sweep.SweepResult:
    """One host-down and facility pass (collector.sweep.run), held by our input's state."""
    return sweep.run(conn, lambda d: open_incident(conn, directory, d),
                     lambda host: directory.lookup(conn, host) is not None, grace, now,
                     params or FacilityParams(), hold)


def relabel_broker_wills(conn: Conn, start: datetime, end: datetime) -> int:
    """Wills that arrived between start and end (around our loss of the broker) are the
    broker's shutdown, not the hosts': relabel them 'broker'; how many were."""
    with conn.transaction():
        hosts = [r[0] for r in conn.execute(
            "UPDATE host_state SET offline_reason = 'broker' WHERE state = 'offline'"
            " AND offline_reason = 'lost' AND offline_at BETWEEN %s AND %s RETURNING host_id",
            (start, end)).fetchall()]
        if hosts:  # the host's own status reads unknown, as for a planned stop, not warning
            conn.execute("UPDATE components SET status = 'unknown' WHERE id = 'host:' || host_id"
                         " AND host_id = ANY(%s) AND status = 'warning'", (hosts,))
    return len(hosts)


def report_status(conn: Conn, client_id: str, now: datetime, ready: bool, paused: bool,
                  reasons: Sequence[str], held_sites: Sequence[str],
                  oldest_unacked_s: float) -> None:
    """This collector's word on its input, for /ops (collector_status)."""
    conn.execute(
        "INSERT INTO collector_status (client_id, ready, detection_paused, reasons, held_sites,"
        " oldest_unacked_s, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (client_id) DO UPDATE SET ready = EXCLUDED.ready,"
        " detection_paused = EXCLUDED.detection_paused, reasons = EXCLUDED.reasons,"
        " held_sites = EXCLUDED.held_sites, oldest_unacked_s = EXCLUDED.oldest_unacked_s,"
        " updated_at = EXCLUDED.updated_at",
        (client_id, ready, paused, list(reasons), list(held_sites), oldest_unacked_s, now))


PRUNE_CHUNK = 50_000  # keys a prune transaction deletes: short locks, bounded WAL bursts


def prune_keys(conn: Conn, now: datetime, dedup_days: int, chunk: int = PRUNE_CHUNK) -> int:
    """Delete deduplication keys older than dedup_days, raising each host's floor; the count.

    A key and the floor that replaces it change in one transaction, so a repeat is refused
    by one or the other, except one arriving during the very transaction that prunes its
    own key (a message dedup_days old, within milliseconds): that one would be stored.
    """
    cutoff = now - timedelta(days=dedup_days)
    total = 0
    while True:
        with conn.transaction():
            row = conn.execute(
                "WITH gone AS (DELETE FROM ingest_keys WHERE ctid = ANY(ARRAY("
                "  SELECT ctid FROM ingest_keys WHERE received_at < %s LIMIT %s))"
                "  RETURNING host_id, seq),"
                " floor AS (INSERT INTO ingest_floor (host_id, seq)"
                "  SELECT host_id, max(seq) FROM gone GROUP BY host_id"
                "  ON CONFLICT (host_id) DO UPDATE SET"
                "  seq = GREATEST(ingest_floor.seq, EXCLUDED.seq))"
                " SELECT count(*) FROM gone", (cutoff, chunk)).fetchone()
        n = int(row[0]) if row else 0
        total += n
        if n < chunk:
            break
    # the will seqs and settled gaps of that time go with the keys
    conn.execute("DELETE FROM ingest_reserved WHERE received_at < %s", (cutoff,))
    conn.execute("DELETE FROM ingest_gaps WHERE seen_at < %s AND state <> 'open'", (cutoff,))
    return total


def ensure_partitions(conn: Conn, now: datetime, retention_days: int,
                      rollup_days: int = 730, ahead_days: int = 3) -> None:
    """Telemetry partitions ahead and retention (collector.retention owns them)."""
    retention.ensure_partitions(conn, now, retention_days, rollup_days, ahead_days)
