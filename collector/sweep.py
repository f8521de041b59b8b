"""The host-down sweep: silence, then missed intervals, then the BMC's word; facilities correlated.

Each pass reads the silent hosts once. A confirmed-down host whose rack, PDU or switch
went silent together joins that scope's facility incident (opened once, by a unique key;
collector/facility.py chooses the scope);
otherwise it gets its own host_down incident, unless a fresh BMC word says it is powered
on (the OS or the network is gone, not the hardware). Facility incidents resolve when
half their hosts are back; hosts still down then fall back to host_down from that time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector import facility, liveness
from collector.facility import FacilityParams, Silent
from collector.liveness import Hold
from collector.model import Detection
from collector.rules import host_down_due
from schemas.states import FIXED_STATES, sql_list
from schemas.wake import wake

FIXED_SQL = sql_list(FIXED_STATES)  # an incident in these is done: the same failure opens anew

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class SweepResult:
    """What one pass opened."""

    host_down: list[int]
    facilities: list[int]
    held_sites: frozenset[str] = frozenset()  # silent at once: taken for our outage


@dataclass(frozen=True)
class _Row:
    silent: Silent
    customer: str
    room: str | None
    interval_s: float
    due: datetime | None
    facility: int | None  # the open facility incident it is linked to
    resolved_at: datetime | None  # the last facility that covered it resolved then


_SILENT = f"""
SELECT s.host_id, h.site_id, h.rack, s.last_message, s.interval_s, h.customer_id, h.room,
       -- the BMC the fleet file names (blades share an enclosure manager), else the one
       -- whose birth reports the same chassis serial (bmc_power, kept at ingest)
       CASE WHEN h.bmc_host IS NOT NULL THEN
              (SELECT t.value <> 0 FROM telemetry t WHERE t.host_id = h.bmc_host
                AND t.component = 'bmc:power' AND t.metric = 'bmc.power_on'
                AND t.time >= %(now)s - make_interval(secs => s.interval_s * %(grace)s)
                AND telemetry_hour(t.time) >= telemetry_hour(
                    %(now)s - make_interval(secs => s.interval_s * %(grace)s))
                ORDER BY t.time DESC LIMIT 1)
            WHEN b.ts >= %(now)s - make_interval(secs => s.interval_s * %(grace)s)
            THEN b.power_on END,
       (SELECT f.id FROM facility_incident_hosts fh JOIN facility_incidents f
         ON f.id = fh.facility_id WHERE fh.host_id = s.host_id AND f.state = 'open' LIMIT 1),
       (SELECT max(f.resolved_at) FROM facility_incident_hosts fh JOIN facility_incidents f
         ON f.id = fh.facility_id WHERE fh.host_id = s.host_id AND fh.back_at IS NULL
         AND f.state = 'resolved'),
       h.pdu, h.switch
FROM host_state s JOIN hosts h ON h.id = s.host_id
LEFT JOIN bmc_power b ON b.host_id = s.host_id
WHERE s.interval_s IS NOT NULL AND (s.offline_reason IS NULL OR s.offline_reason <> 'shutdown')
  AND s.last_message < %(now)s - make_interval(secs => s.interval_s * %(suspect)s)
  -- already down: decided, so a pass costs only the newly silent (the sweep shares the
  -- collector's loop with ingest; re-deciding thousands of down hosts stalled it)
  AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.host_id = s.host_id
                  AND i.component = 'host:' || s.host_id AND i.failure = 'host_down'
                  AND i.state NOT IN {FIXED_SQL})
  -- not before the host had resume intervals to speak since our input came back (Hold):
  -- not fetched at all meanwhile, or every pass after a restart would read every
  -- long-silent host undecided (bench/ingest measured a third more CPU a message)
  AND s.interval_s * %(resume)s <= %(heard_s)s
"""


def _silent(conn: Conn, grace: int, now: datetime, hold: Hold | None) -> list[_Row]:
    rows = conn.execute(_SILENT, {
        "now": now, "grace": grace, "suspect": facility.SUSPECT_INTERVALS,
        # seconds our input has flowed (no hold: 0 intervals needed of 0 seconds)
        "heard_s": (now - hold.heard_since).total_seconds() if hold and hold.heard_since else 0.0,
        "resume": hold.resume_intervals if hold else 0}).fetchall()
    return [_Row(Silent(r[0], r[1], r[2], r[3], r[7], pdu=r[10], switch=r[11]), r[5], r[6],
                 float(r[4]),
                 host_down_due(r[3], float(r[4]), grace, now), r[8], r[9]) for r in rows]


OpenIncident = Callable[[Detection], "int | None"]


_REPORTING = """
SELECT h.site_id, count(*) FROM host_state s JOIN hosts h ON h.id = s.host_id
WHERE s.interval_s IS NOT NULL AND s.offline_reason IS DISTINCT FROM 'shutdown'
GROUP BY h.site_id
"""


def _held(conn: Conn, rows: Sequence[_Row], fraction: float) -> set[str]:
    """Sites nearly all of whose reporting hosts are silent at once (liveness.silent_sites)."""
    racks: dict[str, list[str | None]] = {}
    for r in rows:
        racks.setdefault(r.silent.site, []).append(r.silent.rack)
    if not racks:
        return set()
    reporting = {str(site): int(n) for site, n in conn.execute(_REPORTING).fetchall()}
    return liveness.silent_sites(racks, reporting, fraction)


def run(conn: Conn, open_incident: OpenIncident, known: Callable[[str], bool], grace: int,
        now: datetime, params: FacilityParams, hold: Hold | None = None) -> SweepResult:
    """One pass: resolve facilities whose hosts are back, then decide each confirmed-down host.

    open_incident opens a host_down incident in the caller's terms (store.open_incident).
    With `hold`, nothing is judged while our input is down, a host's silence counts from
    when it came back, and sites silent at once are left alone.
    """
    _resolve(conn, now)
    if hold is not None and hold.heard_since is None:
        return SweepResult([], [])  # our input is down: nothing judged
    rows = _silent(conn, grace, now, hold)
    held: set[str] = set()
    if hold is not None:
        held = _held(conn, rows, hold.site_silent_fraction)
        rows = [_judged(r, hold) for r in rows if r.silent.site not in held]
    # a host a resolved facility left behind is down on its own: never clustered again
    silent = [r.silent for r in rows if not _left_behind(r)]
    by_host = {r.silent.host: r for r in rows}
    opened: list[int] = []
    facilities: list[int] = []
    for r in sorted(rows, key=lambda r: (r.silent.last_message, r.silent.host)):
        if r.due is None or not known(r.silent.host):
            continue
        if r.facility is not None:
            continue  # covered by its rack's, PDU's or switch's facility incident
        if not _left_behind(r):
            fid = _facility_for(conn, r, silent, by_host, params, now, facilities)
            if fid is not None:
                continue
        if r.silent.bmc_on:
            continue  # the BMC says it is powered on: not a hardware host_down
        detected = max(r.due, r.resolved_at) if r.resolved_at else r.due
        if i := _host_down(conn, r, open_incident, detected, grace):
            opened.append(i)
    return SweepResult(opened, facilities, frozenset(held))


def _judged(r: _Row, hold: Hold) -> _Row:
    """The row with its host-down time no earlier than our input let us hear it again."""
    start = hold.judged_from(r.interval_s)
    if r.due is None or start is None or r.due >= start:
        return r
    return _Row(r.silent, r.customer, r.room, r.interval_s, start, r.facility, r.resolved_at)


def _left_behind(r: _Row) -> bool:
    """Still silent since before the facility that covered it was resolved."""
    return r.resolved_at is not None and r.resolved_at > r.silent.last_message


def _facility_for(conn: Conn, r: _Row, silent: Sequence[Silent], by_host: dict[str, _Row],
                  params: FacilityParams, now: datetime, opened: list[int]) -> int | None:
    """Join an open facility incident of the host's PDU, switch or rack (the narrowest), or
    open one for the scope that explains the hosts that went down with it (facility.choose)."""
    s = r.silent
    fid = _open_for(conn, s)
    if fid is None:
        choice = facility.choose(s, silent, _scope_hosts(conn, s), params)
        if choice is None:
            return None
        fid = _open_facility(conn, r, choice, [by_host[g.host] for g in choice.hosts],
                             params, now)
        if fid is not None:
            opened.append(fid)
            return fid
        # another collector opened it this instant (the insert waited for its commit)
        fid = _open_for(conn, s)
        if fid is None:
            return None
    _link(conn, fid, [r])
    return fid


def _open_for(conn: Conn, s: Silent) -> int | None:
    """The open facility incident of the host's PDU, else its switch, else its rack."""
    scopes = [(sc, key) for sc in facility.SCOPES if (key := s.scope_id(sc)) is not None]
    if not scopes:
        return None
    row = conn.execute(
        "SELECT id FROM facility_incidents WHERE site_id = %s AND state = 'open'"
        " AND (scope, scope_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " ORDER BY array_position(%s::text[], scope) LIMIT 1",
        (s.site, [sc for sc, _ in scopes], [k for _, k in scopes],
         list(facility.SCOPES))).fetchone()
    return None if row is None else int(row[0])


def _scope_hosts(conn: Conn, s: Silent) -> dict[facility.Scope, int]:
    """How many hosts the host's rack, PDU and switch have in all."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE rack = %(rack)s), count(*) FILTER (WHERE pdu = %(pdu)s),"
        " count(*) FILTER (WHERE switch = %(switch)s) FROM hosts WHERE site_id = %(site)s",
        {"site": s.site, "rack": s.rack, "pdu": s.pdu, "switch": s.switch}).fetchone()
    rack, pdu, switch = row or (0, 0, 0)
    return {"rack": int(rack), "pdu": int(pdu), "switch": int(switch)}


def _open_facility(conn: Conn, r: _Row, c: facility.Choice, rows: Sequence[_Row],
                   params: FacilityParams, now: datetime) -> int | None:
    """Open the chosen scope's facility incident linking its group; None if one is open."""
    with conn.transaction():
        got = conn.execute(
            "INSERT INTO facility_incidents (site_id, room, rack, scope, scope_id, cause,"
            " detected_at, deadline, rack_hosts, evidence) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s + make_interval(mins => 60), %s, %s) ON CONFLICT (site_id, scope, scope_id)"
            " WHERE state = 'open' DO NOTHING RETURNING id",
            (r.silent.site, r.room, c.rack, c.scope, c.scope_id, c.cause, now, now,
             c.scope_hosts, Jsonb({
                 "source": "sweep", "scope": c.scope, "scope_id": c.scope_id,
                 "silent_hosts": len(c.hosts), "scope_hosts": c.scope_hosts,
                 "rack_hosts": c.scope_hosts, "window_s": params.window_s,
                 "first_silent": c.hosts[0].last_message.isoformat(),
                 "last_silent": c.hosts[-1].last_message.isoformat()}))).fetchone()
        if got is None:
            return None
        _link(conn, int(got[0]), rows)
        wake(conn, f"facility:{got[0]}")
        return int(got[0])


def _link(conn: Conn, fid: int, rows: Sequence[_Row]) -> None:
    conn.cursor().executemany(
        "INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id, last_message)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(fid, x.silent.host, x.customer, x.silent.last_message) for x in rows])


def _resolve(conn: Conn, now: datetime) -> None:
    """Mark hosts that spoke again as back; resolve facilities with half their hosts back."""
    conn.execute(
        "UPDATE facility_incident_hosts fh SET back_at = s.last_message FROM host_state s,"
        " facility_incidents f WHERE s.host_id = fh.host_id AND f.id = fh.facility_id"
        " AND f.state = 'open' AND fh.back_at IS NULL AND s.last_message > fh.last_message")
    for fid, linked, back, last_back in conn.execute(
            "SELECT f.id, count(*), count(fh.back_at), max(fh.back_at) FROM facility_incidents f"
            " JOIN facility_incident_hosts fh ON fh.facility_id = f.id WHERE f.state = 'open'"
            " GROUP BY f.id").fetchall():
        if facility.resolved(linked, back):
            conn.execute("UPDATE facility_incidents SET state = 'resolved', resolved_at = %s"
                         " WHERE id = %s AND state = 'open'", (last_back or now, fid))
            wake(conn, f"facility:{fid}")


def _host_down(conn: Conn, r: _Row, open_incident: OpenIncident, detected: datetime,
               grace: int) -> int | None:
    """A host_down incident for one confirmed-down host, detected when it was confirmed."""
    s = r.silent
    d = Detection(s.host, f"host:{s.host}", "host", "host_down", detected, "host_down", None,
                  None, {"source": "sweep", "last_message": s.last_message.isoformat(),
                         "missed_intervals": grace, "bmc_power_on": s.bmc_on})
    with conn.transaction():
        i = open_incident(d)
        if i:
            wake(conn, "ingest")
    return i
