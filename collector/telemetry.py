"""Applies a batch's telemetry to component status and host state, a statement per table.

Per-message statements cost a round trip each (13 component rows and a host row per
message); here each table gets one `INSERT … SELECT FROM unnest(…)` per batch, its arrays
sent binary (`%b`: formatting text arrays cost more than the server spent on them). Only
a host's newest snapshot counts, and only components whose status, failure, slot or
serial changed are written: `status_ts` is when the current status was first reported
(what verification needs), and a healthy fleet costs no component writes at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from collector import sqlarrays
from collector.model import Message

Conn = psycopg.Connection[tuple[Any, ...]]

#: How a newer component status replaces an older one: by the agent's seq, never by arrival.
STATUS_CONFLICT = """
ON CONFLICT (host_id, id) DO UPDATE SET
    status = EXCLUDED.status, failure = EXCLUDED.failure, status_seq = EXCLUDED.status_seq,
    status_ts = EXCLUDED.status_ts, last_seen = now(),
    slot = COALESCE(EXCLUDED.slot, components.slot),
    serial = COALESCE(EXCLUDED.serial, components.serial)
WHERE components.status_seq < EXCLUDED.status_seq
"""

_COMPONENTS = """
INSERT INTO components (host_id, id, kind, slot, serial, status, failure, status_seq, status_ts,
                        last_seen)
SELECT u.h, u.i, u.k, u.sl, u.se, u.st, u.f, u.q, u.t, now()
FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
            %b::bigint[], %b::timestamptz[]) AS u(h, i, k, sl, se, st, f, q, t)
ORDER BY u.h, u.i""" + STATUS_CONFLICT

_HOSTS = """
INSERT INTO host_state (host_id, state, seq, ts, interval_s, last_message)
SELECT h, 'online', q, t, i, r
FROM unnest(string_to_array(%s, '/'), string_to_array(%s, ',')::bigint[], %b::timestamptz[],
            %b::float8[], %b::timestamptz[]) AS u(h, q, t, i, r)
ON CONFLICT (host_id) DO UPDATE SET
    state = CASE WHEN host_state.seq < EXCLUDED.seq THEN 'online' ELSE host_state.state END,
    offline_reason = CASE WHEN host_state.seq < EXCLUDED.seq THEN NULL
                          ELSE host_state.offline_reason END,
    ts = CASE WHEN host_state.seq < EXCLUDED.seq THEN EXCLUDED.ts ELSE host_state.ts END,
    seq = GREATEST(host_state.seq, EXCLUDED.seq),
    interval_s = EXCLUDED.interval_s,
    last_message = GREATEST(host_state.last_message, EXCLUDED.last_message)
"""

StatusRow = tuple[str, str, str, Any, Any, str, Any, int, datetime]
HostRow = tuple[str, int, datetime, float, datetime]


def _states(m: Message) -> dict[str, tuple[Any, ...]]:
    """A snapshot's component states: id -> (kind, slot, serial, status, failure)."""
    return {c.id: (c.kind, c.slot, c.serial, c.status, c.failure)
            for c in m.telemetry.components}


def status_rows(messages: Sequence[Message], host_seq: dict[str, int],
                current: dict[str, tuple[Any, ...]]) -> list[StatusRow]:
    """Component states of each host's newest snapshot, if no newer message was stored,
    that differ from `current` (by "host/component": the key, then status, failure, slot
    and serial as stored), sorted.

    Each row carries the seq and time of the first message, among this batch's newer
    ones, from which the component has reported that same state: when it failed or
    recovered, not when the batch happened to close. A component that did not change
    is passed over after one comparison: a healthy fleet's batch is all such (building
    every row first, then sorting and filtering them, was about a sixth of the collector's
    interpreter time, profiled).
    """
    by_host: dict[str, list[Message]] = {}
    for m in messages:
        if m.seq > host_seq.get(m.host, 0):
            by_host.setdefault(m.host, []).append(m)
    rows: list[StatusRow] = []
    for host, msgs in by_host.items():
        last = max(msgs, key=_seq) if len(msgs) > 1 else msgs[0]
        older: list[tuple[Message, dict[str, tuple[Any, ...]]]] | None = None
        for cid, state in _states(last).items():
            kind, slot, serial, status, failure = state
            cur = current.get(host + "/" + cid)
            if (cur is not None and status == cur[1] and failure == cur[2]
                    and (not slot or slot == cur[3]) and (not serial or serial == cur[4])):
                continue
            if older is None:  # only for a change, and once per host
                older = [(m, _states(m)) for m in sorted(msgs, key=_seq) if m is not last]
            first = last
            for m, states in reversed(older):
                if states.get(cid) != state:
                    break
                first = m
            rows.append((host, cid, kind, slot, serial, status, failure, first.seq, first.ts))
    rows.sort()  # by (host, id): unique, so the comparison never reaches the other fields
    return rows


def _seq(m: Message) -> int:
    return m.seq


def host_rows(messages: Sequence[Message]) -> list[HostRow]:
    """One row per host: the newest seq's time and interval, the latest arrival, sorted."""
    newest: dict[str, HostRow] = {}
    for m in messages:
        old = newest.get(m.host)
        last = m.received_at if old is None else max(old[4], m.received_at)
        if old is None or old[1] < m.seq:
            newest[m.host] = (m.host, m.seq, m.ts, m.telemetry.interval_s, last)
        else:
            newest[m.host] = (*old[:4], last)
    return [newest[h] for h in sorted(newest)]


def lock_hosts(conn: Conn, hosts: Iterable[str]) -> None:
    """Lock the batch's host_state rows in host order, first thing in the transaction.

    Two collectors holding messages of one host then take turns, and the second sees
    what the first committed: out-of-order snapshots cannot race past each other.
    """
    conn.execute("SELECT 1 FROM host_state WHERE host_id = ANY(" + sqlarrays.NAMES + ")"
                 " ORDER BY host_id FOR UPDATE", (sqlarrays.names(sorted(set(hosts))),))


def apply(conn: Conn, messages: Sequence[Message]) -> None:
    """Write changed component status and host state for accepted telemetry messages.

    The caller holds the hosts' locks (lock_hosts), so what is read here is current.
    """
    if not messages:
        return
    hosts = (sqlarrays.names(sorted({m.host for m in messages})),)
    host_seq: dict[str, int] = dict(conn.execute(
        "SELECT host_id, seq FROM host_state WHERE host_id = ANY(" + sqlarrays.NAMES + ")",
        hosts).fetchall())
    # keyed by one string, the row its value: a tuple key and a slice per component (13 a
    # message) were most of the objects a batch kept alive, and so of its collections
    current = {r[0]: r for r in conn.execute(
        "SELECT host_id || '/' || id, status, failure, slot, serial FROM components"
        " WHERE host_id = ANY(" + sqlarrays.NAMES + ")", hosts).fetchall()}
    rows = status_rows(messages, host_seq, current)
    if rows:
        conn.execute(_COMPONENTS, [list(col) for col in zip(*rows, strict=True)])
    h, q, t, i, r = (list(col) for col in zip(*host_rows(messages), strict=True))
    conn.execute(_HOSTS, (sqlarrays.names(h), sqlarrays.ints(q), t, i, r))
