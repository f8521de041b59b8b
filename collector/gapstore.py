"""The gap scan's database side: ingest_watermark and ingest_gaps are its own tables.

One collector scans at a time (an advisory lock taken for the pass; the others skip it).
A pass reads, per host that spoke lately, the keys above its watermark as holes, records
the gaps collector.gaps finds, then settles every unsettled gap: filled, asked for again
(a resend command through ``send``), or recorded unfilled with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector import gaps
from collector.gaps import Decision, Hole, Keys, Open, Policy, Step
from schemas import commands

Conn = psycopg.Connection[tuple[Any, ...]]
GAP_LOCK = 0x68675F67617073  # "hg_gaps"
#: A host is scanned while it spoke within this of its last scan (a hole it left behind
#: grows old enough to judge after its last message).
SLACK = timedelta(seconds=60)

#: Every host that has a state but no watermark yet is watched from seq 1 (or its
#: deduplication floor) when its first stored seq is at most FRESH_SEQS: a new agent, whose
#: first messages the broker may lose like any other. A host whose first stored seq is
#: higher ran before the fleet knew it (its messages were dead letters then): it is
#: watched from there, not asked for its whole past.
FRESH_SEQS = 1000
_START = """
INSERT INTO ingest_watermark (host_id, seq, scanned_at)
SELECT s.host_id, GREATEST(COALESCE(f.seq, 0), CASE WHEN first.seq <= %(fresh)s THEN 0
                                                   ELSE first.seq - 1 END), %(now)s
FROM host_state s LEFT JOIN ingest_floor f ON f.host_id = s.host_id
CROSS JOIN LATERAL (SELECT COALESCE(min(k.seq), s.seq + 1) AS seq
                    FROM ingest_keys k WHERE k.host_id = s.host_id) first
WHERE NOT EXISTS (SELECT 1 FROM ingest_watermark w WHERE w.host_id = s.host_id)
ON CONFLICT DO NOTHING
"""

#: Per host that spoke lately: its watermark, highest stored seq, and each hole above the
#: watermark as (seq before it, seq after it, when that was stored).
_HOLES = """
SELECT w.host_id, w.seq, max(k.seq),
       array_agg(k.prev ORDER BY k.seq) FILTER (WHERE k.seq > k.prev + 1),
       array_agg(k.seq ORDER BY k.seq) FILTER (WHERE k.seq > k.prev + 1),
       array_agg(k.received_at ORDER BY k.seq) FILTER (WHERE k.seq > k.prev + 1)
FROM ingest_watermark w
JOIN host_state s ON s.host_id = w.host_id AND s.last_message >= w.scanned_at - %(slack)s
CROSS JOIN LATERAL (
    SELECT k.seq, k.received_at,
           COALESCE(lag(k.seq) OVER (ORDER BY k.seq), w.seq) AS prev
    FROM ingest_keys k WHERE k.host_id = w.host_id AND k.seq > w.seq) k
GROUP BY w.host_id, w.seq
"""

_UNSETTLED = """
SELECT g.id, g.host_id, h.site_id, g.first_seq, g.last_seq, g.seen_at, g.requests,
       g.next_request_at, g.state = 'unfilled',
       (SELECT count(*) FROM (
            SELECT k.seq FROM ingest_keys k
            WHERE k.host_id = g.host_id AND k.seq BETWEEN g.first_seq AND g.last_seq
            UNION  -- a will's seq learnt after the gap was seen (its birth was in the gap)
            SELECT r.seq FROM ingest_reserved r
            WHERE r.host_id = g.host_id AND r.seq BETWEEN g.first_seq AND g.last_seq) x),
       COALESCE(s.state = 'online', false),
       CASE WHEN s.state = 'offline' THEN COALESCE(s.offline_at, s.ts) END
FROM ingest_gaps g JOIN hosts h ON h.id = g.host_id
LEFT JOIN host_state s ON s.host_id = g.host_id
WHERE g.state = 'open' OR (g.state = 'unfilled' AND g.seen_at > %(now)s - %(retention)s)
ORDER BY g.id
"""


@dataclass(frozen=True)
class Pass:
    """What one scan pass did."""

    found: int = 0  # new gaps recorded
    seqs: int = 0  # seqs in them
    asked: int = 0  # resend commands sent
    filled: int = 0
    given_up: int = 0
    open: int = 0  # unsettled after the pass, unfilled ones included
    unfilled: int = 0


Send = Callable[[str, bytes], None]


def scan(conn: Conn, now: datetime, policy: Policy, send: Send) -> Pass | None:
    """One pass; None when another collector holds the scan."""
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (GAP_LOCK,)).fetchone()
        if not row or not row[0]:
            return None
        conn.execute(_START, {"now": now, "fresh": FRESH_SEQS})
        keys = [Keys(r[0], r[1], r[2], [Hole(a, b, at) for a, b, at in
                                         zip(r[3] or (), r[4] or (), r[5] or (), strict=True)])
                for r in conn.execute(_HOLES, {"slack": SLACK})]
        found = gaps.scan(keys, _reserved(conn, [k for k in keys if k.holes]), now, policy)
        _record(conn, found, keys, now)
        return _settle(conn, now, policy, send, found)


def _reserved(conn: Conn, keys: Sequence[Keys]) -> dict[str, list[int]]:
    """The will seqs above each host's watermark."""
    if not keys:
        return {}
    out: dict[str, list[int]] = {}
    for host, seq in conn.execute(
            "SELECT r.host_id, r.seq FROM ingest_reserved r"
            " JOIN unnest(%s::text[], %s::bigint[]) AS w(h, m) ON r.host_id = w.h AND r.seq > w.m",
            ([k.host for k in keys], [k.mark for k in keys])):
        out.setdefault(host, []).append(seq)
    return out


def _record(conn: Conn, found: gaps.Scan, keys: Sequence[Keys], now: datetime) -> None:
    """Insert the new gaps, move the watermarks, stamp every scanned host."""
    if found.gaps:
        conn.execute(
            "INSERT INTO ingest_gaps (host_id, first_seq, last_seq, seen_at, missing,"
            " next_request_at) SELECT h, f, l, %s, l - f + 1, %s"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS u(h, f, l)"
            " ON CONFLICT (host_id, first_seq) DO NOTHING",
            (now, now, [g.host for g in found.gaps], [g.first for g in found.gaps],
             [g.last for g in found.gaps]))
    if keys:
        marks = [found.marks.get(k.host, k.mark) for k in keys]
        conn.execute(
            "UPDATE ingest_watermark w SET seq = GREATEST(w.seq, u.m), scanned_at = %s"
            " FROM unnest(%s::text[], %s::bigint[]) AS u(h, m) WHERE w.host_id = u.h",
            (now, [k.host for k in keys], marks))


def _settle(conn: Conn, now: datetime, policy: Policy, send: Send, found: gaps.Scan) -> Pass:
    """Decide every unsettled gap; ask the agents for what is still missing."""
    asked = filled = given_up = still = unfilled = 0
    for r in conn.execute(_UNSETTLED, {"now": now,
                                       "retention": timedelta(seconds=policy.retention_s)
                                       }).fetchall():
        g = Open(r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[8], int(r[9]), r[10], r[11])
        d = gaps.decide(g, now, policy)
        if d.step is Step.FILLED:
            filled += 1
            conn.execute("UPDATE ingest_gaps SET state = 'filled', closed_at = %s, missing = 0"
                         " WHERE id = %s", (now, g.id))
            continue
        still += 1
        if d.step is Step.ASK:
            asked += 1
            send(*_command(g, r[2], now))
            conn.execute("UPDATE ingest_gaps SET requests = requests + 1, requested_at = %s,"
                         " next_request_at = %s, missing = %s WHERE id = %s",
                         (now, d.next_request_at, g.missing, g.id))
        elif d.step in (Step.GIVE_UP, Step.EXPIRE):
            given_up += d.step is Step.GIVE_UP
            _give_up(conn, g, d, now)
        unfilled += g.unfilled or d.step is Step.GIVE_UP
    return Pass(len(found.gaps), sum(x.size for x in found.gaps), asked, filled, given_up,
                still, unfilled)


def _give_up(conn: Conn, g: Open, d: Decision, now: datetime) -> None:
    """Record a gap unfilled with its reason (past retention, it leaves the scan)."""
    conn.execute("UPDATE ingest_gaps SET state = 'unfilled', reason = %s, missing = %s,"
                 " closed_at = COALESCE(closed_at, %s) WHERE id = %s",
                 (d.reason, g.missing, now, g.id))


def _command(g: Open, site: str, now: datetime) -> tuple[str, bytes]:
    """The resend command for one gap."""
    payload = commands.resend(g.host, site, g.first, g.last, now, gap=g.id)
    return commands.resend_topic(site, g.host), json.dumps(payload).encode()


def summary(conn: Conn) -> dict[str, int]:
    """Gaps by state, fleet-wide (open and unfilled are what an operator watches)."""
    rows = conn.execute("SELECT state, count(*) FROM ingest_gaps GROUP BY state").fetchall()
    return {"open": 0, "filled": 0, "unfilled": 0} | {r[0]: int(r[1]) for r in rows}
