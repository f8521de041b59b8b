"""The small ids of the wide telemetry layout: host numbers and metric sets (migration 019).

Each name list is stored once (`telemetry_sets`), each host once (`telemetry_hosts`);
a row carries their ids. Ids are made in their own short transaction before the batch's,
and cached per connection only once committed, so a rolled-back batch never leaves the
cache holding an id the database does not have. Ids are never deleted.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq

from collector import widecopy
from collector.model import Message

Conn = psycopg.Connection[tuple[Any, ...]]
_CACHE_MAX = 200_000  # distinct sets held per connection (about a fleet's worth); then cleared


@dataclass
class Ids:
    """What one connection learnt: the layout, host numbers, metric-set ids."""

    wide: bool
    hosts: dict[str, int] = field(default_factory=dict)
    sets: dict[widecopy.SetKey, int] = field(default_factory=dict)


_BY_CONN: weakref.WeakKeyDictionary[Conn, Ids] = weakref.WeakKeyDictionary()


def ids(conn: Conn) -> Ids:
    """This connection's ids, learning the layout on first use."""
    got = _BY_CONN.get(conn)
    if got is None:
        row = conn.execute("SELECT to_regclass('telemetry_rows') IS NOT NULL").fetchone()
        got = _BY_CONN[conn] = Ids(wide=bool(row and row[0]))
    return got


def resolve(conn: Conn, messages: Iterable[Message]) -> Ids:
    """Ids for every host and metric set of the messages' readings (made if new)."""
    known = ids(conn)
    if not known.wide:
        return known
    tele = [m for m in messages if m.snapshot is not None and m.snapshot.readings]
    new_hosts = sorted({m.host for m in tele} - known.hosts.keys())
    new_sets = {k: None for m in tele if (k := widecopy.set_key(m)) not in known.sets}
    if not new_hosts and not new_sets:
        return known
    # Outside a transaction the ids below are committed when cached; inside one (a
    # caller's), they could still roll back, so they are used for this batch only.
    cache = conn.info.transaction_status == pq.TransactionStatus.IDLE
    out = known if cache else Ids(True, dict(known.hosts), dict(known.sets))
    if len(out.sets) + len(new_sets) > _CACHE_MAX:
        out.sets.clear()
    with conn.transaction():
        if new_hosts:
            conn.execute("INSERT INTO telemetry_hosts (host_id) SELECT unnest(%s::text[])"
                         " ORDER BY 1 ON CONFLICT DO NOTHING", (new_hosts,))
            out.hosts.update(conn.execute(
                "SELECT host_id, id FROM telemetry_hosts WHERE host_id = ANY(%s)",
                (new_hosts,)).fetchall())
        if new_sets:
            _make_sets(conn, list(new_sets), out)
    return out


def _make_sets(conn: Conn, keys: list[widecopy.SetKey], out: Ids) -> None:
    """Insert the sets not stored yet (in digest order: no deadlock between collectors)."""
    by_digest = sorted((widecopy.digest(k), k) for k in keys)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry_sets (digest, components, metrics) VALUES (%s, %s, %s)"
            " ON CONFLICT (digest) DO NOTHING",
            [(d, [c for c, _ in k], [m for _, m in k]) for d, k in by_digest])
    found: dict[bytes, int] = dict(conn.execute(
        "SELECT digest, id FROM telemetry_sets WHERE digest = ANY(%s)",
        ([d for d, _ in by_digest],)).fetchall())
    for d, k in by_digest:
        out.sets[k] = found[d]
