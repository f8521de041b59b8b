"""Stores a birth: host facts, the inventory, its changes since the previous birth by seq.

The caller holds the host's host_state lock (telemetry.lock_hosts), so the previous birth
read here is current. A birth older (by seq) than the last one applied is stale: it
changes nothing, so a late retained birth cannot undo a replacement.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector.inventory import MISSING_FAILURE, MISSING_SLUGS, Change, Part, diff
from collector.model import Detection, Message

Conn = psycopg.Connection[tuple[Any, ...]]

_HOST = (
    "INSERT INTO host_state (host_id, state, seq, ts, boot_id, agent_version, interval_s,"
    " chassis, last_message, birth_seq) VALUES (%s, 'online', %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (host_id) DO UPDATE SET boot_id = EXCLUDED.boot_id,"
    " agent_version = EXCLUDED.agent_version, interval_s = EXCLUDED.interval_s,"
    " chassis = EXCLUDED.chassis, birth_seq = EXCLUDED.birth_seq,"
    " last_message = GREATEST(host_state.last_message, EXCLUDED.last_message)"
)
_COMPONENT = (
    "INSERT INTO components (host_id, id, kind, slot, device, model, serial, size_bytes,"
    " attrs, birth_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (host_id, id) DO UPDATE SET kind = EXCLUDED.kind, slot = EXCLUDED.slot,"
    " device = EXCLUDED.device, model = EXCLUDED.model, serial = EXCLUDED.serial,"
    " size_bytes = EXCLUDED.size_bytes, attrs = EXCLUDED.attrs, birth_seq = EXCLUDED.birth_seq,"
    " last_seen = now()"
)
# Status moves only forward in seq, like every other status write (telemetry.STATUS_CONFLICT).
_STATUS = ("UPDATE components SET status = %s, failure = %s, status_seq = %s, status_ts = %s"
           " WHERE host_id = %s AND id = %s AND status_seq < %s")


def apply(conn: Conn, m: Message) -> list[Detection]:
    """Store one birth; return the failures it proves (parts gone since the previous birth)."""
    b = m.body
    row = conn.execute("SELECT birth_seq FROM host_state WHERE host_id = %s",
                       (m.host,)).fetchone()
    prev_seq = row[0] if row else None
    if prev_seq is not None and m.seq <= prev_seq:
        return []  # stale: a newer birth of this host is already applied
    conn.execute(_HOST, (m.host, m.seq, m.ts, b["boot_id"], b["agent_version"], b["interval_s"],
                         Jsonb(b["chassis"]), m.received_at, m.seq))
    previous = [Part(*r) for r in conn.execute(
        "SELECT id, kind, slot, serial FROM components WHERE host_id = %s AND birth_seq = %s",
        (m.host, prev_seq)).fetchall()] if prev_seq is not None else []
    missing_before = [Part(*r) for r in conn.execute(
        "SELECT id, kind, slot, serial FROM components WHERE host_id = %s AND status = 'failed'"
        " AND failure = ANY(%s)", (m.host, sorted(MISSING_SLUGS))).fetchall()]
    current = [Part(c["id"], c["kind"], c.get("slot"), c.get("serial")) for c in b["components"]]
    params = [(m.host, c["id"], c["kind"], c.get("slot"), c.get("device"), c.get("model"),
               c.get("serial"), c.get("size_bytes"), Jsonb(_attrs(c)), m.seq)
              for c in b["components"]]
    if params:
        conn.cursor().executemany(_COMPONENT, params)
    _coverage(conn, m)
    # A kind of part the agent cannot fully see (smartctl gone: disks listed by device name,
    # unwatched) proves no absence: its parts missing from this birth open nothing.
    blind = {c["kind"] for c in b["components"] if "coverage" in c}
    changes = [c for c in diff(previous, current, missing_before)
               if not (c.change == "missing" and c.part.kind in blind)]
    _record(conn, m, changes, prev_seq)
    return [_missing(m, c, prev_seq) for c in changes if c.change == "missing"]


def _attrs(c: dict[str, Any]) -> dict[str, Any]:
    """A component's attrs, with why the agent cannot watch it when it says so."""
    attrs = dict(c.get("attrs", {}))
    if "coverage" in c:
        attrs["coverage"] = c["coverage"]
    return attrs


def _coverage(conn: Conn, m: Message) -> None:
    """Each probe's status on this host, as this birth says (probe_coverage, 021)."""
    probes = m.body.get("probes")
    if probes is None:
        return  # an agent from before coverage: its coverage is unknown, not changed
    conn.execute("DELETE FROM probe_coverage WHERE host_id = %s", (m.host,))
    conn.cursor().executemany(
        "INSERT INTO probe_coverage (host_id, probe, status, detail, package, birth_seq,"
        " seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (host_id, probe) DO UPDATE"
        " SET status = EXCLUDED.status, detail = EXCLUDED.detail, package = EXCLUDED.package,"
        " birth_seq = EXCLUDED.birth_seq, seen_at = EXCLUDED.seen_at",
        [(m.host, p["probe"], p["status"], p.get("detail", ""), p.get("package"), m.seq, m.ts)
         for p in probes])


def _record(conn: Conn, m: Message, changes: list[Change], prev_seq: int | None) -> None:
    """Append the changes; flag missing parts failed and returned ones ok, at the birth's time."""
    if not changes:
        return
    conn.cursor().executemany(
        "INSERT INTO inventory_changes (host_id, component, kind, slot, change, old_serial,"
        " new_serial, at, seq, prev_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(m.host, c.part.id, c.part.kind, c.part.slot, c.change, c.old_serial, c.new_serial,
          m.ts, m.seq, prev_seq) for c in changes])
    for c in changes:
        if c.change == "missing":
            conn.execute(_STATUS, ("failed", MISSING_FAILURE[c.part.kind], m.seq, m.ts, m.host,
                                   c.part.id, m.seq))
        elif c.change in ("returned", "replaced") and c.part.kind != "disk":
            # a disk is proved by its own SMART status in telemetry, not by being listed
            conn.execute(_STATUS, ("ok", None, m.seq, m.ts, m.host, c.part.id, m.seq))
        if c.change == "replaced":
            # the part a prediction was about is gone: the proactive job is done
            conn.execute(
                "UPDATE predictions SET state = 'done', closed_at = %s WHERE host_id = %s"
                " AND state = 'open' AND (component = %s OR (kind = %s AND slot = %s))",
                (m.ts, m.host, c.part.id, c.part.kind, c.part.slot))


def _missing(m: Message, c: Change, prev_seq: int | None) -> Detection:
    """The failure a vanished part proves, detected at the birth that lacks it."""
    return Detection(m.host, c.part.id, c.part.kind, MISSING_FAILURE[c.part.kind], m.ts,
                     "part_missing", c.part.slot, c.part.serial,
                     {"source": "birth", "birth_seq": m.seq, "previous_birth_seq": prev_seq,
                      "boot_id": m.body["boot_id"]}, m.seq)
