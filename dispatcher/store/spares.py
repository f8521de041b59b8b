"""Spare parts: stock per site and part, its append-only ledger, reservations, low-stock alerts.

`spares.count` is what stands on the shelf; a reservation holds one for an incident from
dispatch until the verified fix consumes it (the count goes down) or the incident ends
without it (released). Every count change writes a `spare_movements` row in the same
transaction; a fall of the available count to the site's threshold writes a `spare_alerts`
row. The `spares` row is locked (`FOR UPDATE`) around each change, so two dispatchers never
hand out the same last part.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import tuple_row

from dispatcher.domain import proactive
from dispatcher.fleet import _IDENT, LOCATION_MAX, SPARE_KINDS
from dispatcher.store import Conn

log = logging.getLogger(__name__)
_INT_MAX = 2**31 - 1  # the schema's integer count column
FIELDS = ("site", "part", "kind", "count")
OPTIONAL = ("location",)  # where it stands in the store room, for the job card


class SpareError(ValueError):
    """A spares command cannot be done; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class SpareRow:
    """One line of a spares file: the count of one part at one site."""

    site: str
    part: str
    kind: str
    count: int
    location: str | None = None


@dataclass(frozen=True)
class Stock:
    """One (site, part) as the list shows it."""

    site: str
    part: str
    kind: str
    count: int
    reserved: int
    threshold: int
    location: str | None = None

    @property
    def available(self) -> int:
        """On the shelf and not held for an incident."""
        return self.count - self.reserved

    @property
    def low(self) -> bool:
        """At or below the site's low-stock threshold."""
        return self.available <= self.threshold


# -- reading a spares file -------------------------------------------------------------------

def _row(value: Any, where: str) -> SpareRow:
    """Validate one record; errors name the file, the row and the field."""
    if not isinstance(value, dict):
        raise SpareError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if value.get(f) in (None, "")]
    unknown = sorted(set(value) - set(FIELDS) - set(OPTIONAL))
    if missing or unknown:
        raise SpareError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else [])
            + ([f"unknown key(s) {', '.join(map(str, unknown))}"] if unknown else []))
            + f"; each row needs exactly {', '.join(FIELDS)} (and may say {OPTIONAL[0]})")
    site, part, kind = str(value["site"]).strip(), str(value["part"]).strip(), \
        str(value["kind"]).strip()
    if not _IDENT.match(site):
        raise SpareError(f"{where}.site: {site!r} is not a site id")
    if kind not in SPARE_KINDS:
        raise SpareError(f"{where}.kind: {kind!r} is not one of {', '.join(sorted(SPARE_KINDS))}")
    raw = value["count"]
    try:
        count = int(str(raw).strip())
    except ValueError:
        raise SpareError(f"{where}.count: {raw!r} is not a whole number") from None
    if not 0 <= count <= _INT_MAX:
        raise SpareError(f"{where}.count: {count} is out of range; give 0 or more")
    location = _location(value.get("location"), f"{where}.location")
    return SpareRow(site, part, kind, count, location)


def _location(value: Any, where: str) -> str | None:
    """A location: free text up to LOCATION_MAX characters; empty is none."""
    text = "" if value is None else str(value).strip()
    if len(text) > LOCATION_MAX:
        raise SpareError(f"{where}: {len(text)} characters is too long; say where it stands in"
                         f" {LOCATION_MAX} or fewer (e.g. \"Store room B, shelf 3, bin 12\")")
    return text or None


def read_spares_file(path: Path) -> list[SpareRow]:
    """Parse a CSV (header site,part,kind,count) or YAML (a list, or `spares:` list) file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpareError(f"{path}: cannot read the spares file ({exc}); check the path") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [_row(r, f"{path}: line {reader.line_num}") for r in reader]
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpareError(f"{path}: not valid YAML ({exc}); fix the syntax") from None
        if isinstance(data, dict) and set(data) == {"spares"}:
            data = data["spares"]
        if not isinstance(data, list):
            raise SpareError(f"{path}: expected a list of spares (or a `spares:` list)")
        rows = [_row(r, f"{path}: spares[{i}]") for i, r in enumerate(data)]
    seen: set[tuple[str, str]] = set()
    for r in rows:
        if (r.site, r.part) in seen:
            raise SpareError(f"{path}: ({r.site}, {r.part}) is listed twice; give it once")
        seen.add((r.site, r.part))
    return rows


# -- the ledger ------------------------------------------------------------------------------

def _locked(conn: Conn, site: str, part: str) -> tuple[str, int, int, int] | None:
    """(kind, count, reserved, threshold) of a (site, part), its row locked; None if absent.

    Also tells the database trigger that this transaction writes its own movements.
    """
    conn.execute("SELECT set_config('hourglass.ledger', 'on', true)")
    with conn.cursor(row_factory=tuple_row) as cur:  # callers may hold a dict_row connection
        row = cur.execute(
            "SELECT p.kind, p.count, (SELECT count(*) FROM spare_reservations r WHERE"
            " r.site_id = p.site_id AND r.part = p.part AND r.state = 'reserved'),"
            " s.spares_low_stock FROM spares p JOIN sites s ON s.id = p.site_id"
            " WHERE p.site_id = %s AND p.part = %s FOR UPDATE OF p", (site, part)).fetchone()
    return (row[0], int(row[1]), int(row[2]), int(row[3])) if row else None


def _move(conn: Conn, site: str, part: str, delta: int, after: int, reason: str, actor: str,
          now: datetime, incident: int | None = None, proactive_job: int | None = None) -> None:
    conn.execute("INSERT INTO spare_movements (site_id, part, delta, count_after, reason, actor,"
                 " incident_id, proactive_job_id, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 (site, part, delta, after, reason, actor, incident, proactive_job, now))


def _alert_if_crossed(conn: Conn, site: str, part: str, kind: str, before: int | None,
                      after: int, threshold: int, now: datetime) -> None:
    """Record a low-stock alert when the available count falls to the threshold or below."""
    if after <= threshold and (before is None or before > threshold):
        conn.execute("INSERT INTO spare_alerts (site_id, part, kind, available, threshold, at)"
                     " VALUES (%s, %s, %s, %s, %s, %s)", (site, part, kind, after, threshold, now))
        log.warning("low stock at %s: %s (%s) has %d available", site, part, kind, after)


def import_rows(conn: Conn, rows: list[SpareRow], actor: str, now: datetime) -> int:
    """Set each (site, part) to the counted number (a stocktake); return the rows changed."""
    changed = 0
    with conn.transaction():
        sites = {r[0] for r in conn.execute("SELECT id FROM sites")}
        for r in rows:
            if r.site not in sites:
                raise SpareError(f"unknown site {r.site!r}: load it with `hourglass load` first"
                                 f" (known: {', '.join(sorted(sites)) or 'none'})")
            now_row = _locked(conn, r.site, r.part)
            if r.location is not None:
                conn.execute("UPDATE spares SET location = %s WHERE site_id = %s AND part = %s"
                             " AND location IS DISTINCT FROM %s",
                             (r.location, r.site, r.part, r.location))
            if now_row is None:
                threshold = _threshold(conn, r.site)
                conn.execute("INSERT INTO spares (site_id, part, kind, count, location)"
                             " VALUES (%s, %s, %s, %s, %s)",
                             (r.site, r.part, r.kind, r.count, r.location))
                _move(conn, r.site, r.part, r.count, r.count, "import", actor, now)
                _alert_if_crossed(conn, r.site, r.part, r.kind, None, r.count, threshold, now)
                changed += 1
                continue
            kind, count, reserved, threshold = now_row
            if count == r.count and kind == r.kind:
                continue
            if r.count < reserved:
                raise SpareError(f"{r.site}/{r.part}: {reserved} are reserved for open incidents;"
                                 f" a count of {r.count} is less than that")
            conn.execute("UPDATE spares SET count = %s, kind = %s WHERE site_id = %s AND part = %s",
                         (r.count, r.kind, r.site, r.part))
            _move(conn, r.site, r.part, r.count - count, r.count, "import", actor, now)
            _alert_if_crossed(conn, r.site, r.part, r.kind, count - reserved,
                              r.count - reserved, threshold, now)
            changed += 1
    return changed


def _threshold(conn: Conn, site: str) -> int:
    row = conn.execute("SELECT spares_low_stock FROM sites WHERE id = %s", (site,)).fetchone()
    return int(row[0]) if row else 1


def adjust(conn: Conn, site: str, part: str, delta: int, reason: str, actor: str,
           now: datetime) -> int:
    """Add (or with a negative delta remove) parts; return the new shelf count."""
    if delta == 0:
        raise SpareError("--delta 0 changes nothing; give a positive or negative number")
    with conn.transaction():
        row = _locked(conn, site, part)
        if row is None:
            raise SpareError(f"no spare {part!r} at site {site!r}: add it with "
                             "`hourglass spares import FILE` (it needs a kind)")
        kind, count, reserved, threshold = row
        after = count + delta
        if after < reserved:
            raise SpareError(f"{site}/{part}: {count} on the shelf, {reserved} reserved for open"
                             f" incidents; cannot remove {-delta}")
        if after > _INT_MAX:
            raise SpareError(f"{site}/{part}: a count of {after} is too large")
        conn.execute("UPDATE spares SET count = %s WHERE site_id = %s AND part = %s",
                     (after, site, part))
        _move(conn, site, part, delta, after, reason, actor, now)
        _alert_if_crossed(conn, site, part, kind, count - reserved, after - reserved,
                          threshold, now)
    return after


def stock(conn: Conn, site: str | None = None) -> list[Stock]:
    """Every (site, part) with its shelf count, reservations and threshold."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
        "SELECT p.site_id, p.part, p.kind, p.count, (SELECT count(*) FROM spare_reservations r"
        " WHERE r.site_id = p.site_id AND r.part = p.part AND r.state = 'reserved'),"
        " s.spares_low_stock, p.location FROM spares p JOIN sites s ON s.id = p.site_id"
        " WHERE %s::text IS NULL OR p.site_id = %s ORDER BY p.site_id, p.kind, p.part",
        (site, site)).fetchall()
    return [Stock(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), r[6]) for r in rows]


def locate(conn: Conn, site: str, part: str, location: str) -> None:
    """Say where a (site, part) stands ("" clears it); the job card shows it."""
    text = _location(location, "--location")
    cur = conn.execute("UPDATE spares SET location = %s WHERE site_id = %s AND part = %s",
                       (text, site, part))
    if cur.rowcount == 0:
        raise SpareError(f"no spare {part!r} at site {site!r}: add it with "
                         "`hourglass spares import FILE` first")


def render(items: list[Stock]) -> str:
    """A readable table of the stock."""
    head = ("SITE", "PART", "KIND", "ON SHELF", "RESERVED", "AVAILABLE", "LOCATION", "")
    lines = [head] + [(s.site, s.part, s.kind, str(s.count), str(s.reserved), str(s.available),
                       s.location or "-", "LOW" if s.low else "") for s in items]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                   + "\n" for line in lines)


# -- reservations at dispatch, consumption at the fix ----------------------------------------

def fits(part: str, model: str | None) -> bool:
    """Whether a stocked part number fits the failed part's model (unknown model: any)."""
    if not model:
        return True
    a, b = part.strip().lower(), model.strip().lower()
    # Drives report the model with a firmware/variant suffix ("ST8000NM000A-2KE101").
    return a == b or b.startswith(a) or a.startswith(b)


def reserve(conn: Conn, incident: int, site: str, kind: str, model: str | None,
            now: datetime) -> str | None:
    """Hold one fitting spare for the incident (inside the caller's transaction); its part."""
    held = conn.execute("SELECT part FROM spare_reservations WHERE incident_id = %s"
                        " AND state = 'reserved'", (incident,)).fetchone()
    if held is not None:
        return str(held[0])
    parts = [str(r[0]) for r in conn.execute(
        "SELECT part FROM spares WHERE site_id = %s AND kind = %s ORDER BY part", (site, kind))]
    for part in (p for p in parts if fits(p, model)):
        row = _locked(conn, site, part)
        if row is None or row[1] - row[2] <= 0:
            continue
        _, count, reserved, threshold = row
        try:
            with conn.transaction():
                conn.execute("INSERT INTO spare_reservations (incident_id, site_id, part,"
                             " reserved_at) VALUES (%s, %s, %s, %s)", (incident, site, part, now))
        except psycopg.errors.UniqueViolation:
            return None  # a used reservation from an earlier job of this incident
        _alert_if_crossed(conn, site, part, kind, count - reserved, count - reserved - 1,
                          threshold, now)
        return part
    return None


def settle(conn: Conn, now: datetime) -> int:
    """Consume the spares of verified fixes, release those of incidents closed without one."""
    done = 0
    for incident, site, part, verified in conn.execute(
            "SELECT r.incident_id, r.site_id, r.part, i.verified_at IS NOT NULL FROM"
            " spare_reservations r JOIN incidents i ON i.id = r.incident_id"
            " WHERE r.state = 'reserved' AND (i.verified_at IS NOT NULL OR i.state = 'closed')"
            ).fetchall():
        with conn.transaction():
            row = _locked(conn, site, part)
            live = conn.execute("SELECT 1 FROM spare_reservations WHERE incident_id = %s AND"
                                " state = 'reserved' FOR UPDATE", (incident,)).fetchone()
            if row is None or live is None:
                continue  # another dispatcher settled it first
            conn.execute("UPDATE spare_reservations SET state = %s, ended_at = %s"
                         " WHERE incident_id = %s",
                         ("consumed" if verified else "released", now, incident))
            if verified:
                conn.execute("UPDATE spares SET count = count - 1 WHERE site_id = %s AND part = %s",
                             (site, part))
                _move(conn, site, part, -1, row[1] - 1, "consumed", "dispatcher", now, incident)
            done += 1
    return done


def release(conn: Conn, incident: int, now: datetime) -> bool:
    """Give an incident's spare back to the shelf (the incident ended without using it)."""
    cur = conn.execute("UPDATE spare_reservations SET state = 'released', ended_at = %s"
                       " WHERE incident_id = %s AND state = 'reserved'", (now, incident))
    return cur.rowcount == 1


# -- proactive jobs (planned work from predictions): never the last spare of a part ----------

def reserve_proactive(conn: Conn, job: int, site: str, kind: str, model: str | None,
                      now: datetime) -> tuple[str | None, str | None]:
    """Hold a fitting spare for a proactive job, keeping the last for failures; (part, why none).

    (None, None): the site keeps no stock of this kind in Hourglass, so nothing is said.
    """
    parts = [str(r[0]) for r in conn.execute(
        "SELECT part FROM spares WHERE site_id = %s AND kind = %s ORDER BY part", (site, kind))]
    if not parts:
        return None, None
    fitting = [p for p in parts if fits(p, model)]
    if not fitting:
        return None, f"no spare {kind} fitting {model} at {site}: order one from the depot"
    available: dict[str, int] = {}
    rows: dict[str, tuple[str, int, int, int]] = {}
    for part in fitting:  # locked in part order, as reserve() does, so no deadlock
        row = _locked(conn, site, part)
        if row is not None:
            rows[part] = row
            available[part] = row[1] - row[2]
    chosen = proactive.spare_part(available)
    if chosen is None:
        return None, (f"the last spare {kind} at {site} is kept for failures: order one "
                      "from the depot")
    _, count, reserved, threshold = rows[chosen]
    conn.execute("INSERT INTO spare_reservations (proactive_job_id, site_id, part, reserved_at)"
                 " VALUES (%s, %s, %s, %s)", (job, site, chosen, now))
    _alert_if_crossed(conn, site, chosen, kind, count - reserved, count - reserved - 1,
                      threshold, now)
    return chosen, None


def end_proactive(conn: Conn, job: int, used: bool, now: datetime) -> str | None:
    """Consume (the part went in) or release a proactive job's spare; the part, if any."""
    with conn.cursor(row_factory=tuple_row) as cur:  # callers may hold a dict_row connection
        held = cur.execute("SELECT site_id, part FROM spare_reservations WHERE"
                           " proactive_job_id = %s AND state = 'reserved'", (job,)).fetchone()
    if held is None:
        return None
    site, part = str(held[0]), str(held[1])
    row = _locked(conn, site, part)
    conn.execute("UPDATE spare_reservations SET state = %s, ended_at = %s"
                 " WHERE proactive_job_id = %s", ("consumed" if used else "released", now, job))
    if used and row is not None:
        conn.execute("UPDATE spares SET count = count - 1 WHERE site_id = %s AND part = %s",
                     (site, part))
        _move(conn, site, part, -1, row[1] - 1, "consumed (proactive job)", "dispatcher", now,
              proactive_job=job)
    return part


# -- a failure before planned work: the spare of a planned proactive job moves to it --------

#: Whose spare a failure may take: a proactive job only planned, not yet acknowledged. The job
#: model has no "on site" state, so an acknowledged job is treated as a technician who may
#: already carry the part to the rack; their spare is never taken.
TAKEABLE_STATE = "planned"


def takeable(conn: Conn, site: str) -> dict[str, int]:
    """Per part, the spares at a site held by planned proactive jobs (a failure may take them)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT r.part, count(*) FROM spare_reservations r JOIN proactive_jobs pj ON"
            " pj.id = r.proactive_job_id WHERE r.site_id = %s AND r.state = 'reserved'"
            " AND pj.state = %s GROUP BY r.part", (site, TAKEABLE_STATE)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def preempt(conn: Conn, incident: int, site: str, kind: str, model: str | None,
            now: datetime) -> tuple[str, int] | None:
    """Move the spare of the newest planned proactive job to a failure incident, inside the
    caller's transaction; (part, proactive job) or None when no such spare fits.

    The job rows are locked `FOR UPDATE SKIP LOCKED` first (the order the job actions use:
    job, then the spares row), so a job a technician is acting on right now is left alone
    and two dispatchers never move the same reservation.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT pj.id, r.part FROM spare_reservations r JOIN proactive_jobs pj ON"
            " pj.id = r.proactive_job_id JOIN spares p ON p.site_id = r.site_id AND"
            " p.part = r.part WHERE r.site_id = %s AND r.state = 'reserved' AND pj.state = %s"
            " AND p.kind = %s ORDER BY pj.planned_at DESC, pj.id DESC"
            " FOR UPDATE OF pj SKIP LOCKED", (site, TAKEABLE_STATE, kind)).fetchall()
    for job, part in rows:
        if not fits(str(part), model) or _locked(conn, site, str(part)) is None:
            continue
        live = conn.execute("SELECT 1 FROM spare_reservations WHERE proactive_job_id = %s AND"
                            " state = 'reserved' FOR UPDATE", (job,)).fetchone()
        if live is None:
            continue  # ended while we looked
        try:
            with conn.transaction():
                conn.execute("UPDATE spare_reservations SET state = 'released', ended_at = %s"
                             " WHERE proactive_job_id = %s", (now, job))
                conn.execute("INSERT INTO spare_reservations (incident_id, site_id, part,"
                             " reserved_at) VALUES (%s, %s, %s, %s)", (incident, site, part, now))
        except psycopg.errors.UniqueViolation:
            return None  # a used reservation from an earlier job of this incident
        log.warning("spare %s of proactive job %s moved to failure incident %s", part, job,
                    incident)
        return str(part), int(job)
    return None
