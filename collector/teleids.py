"""The small ids of the wide telemetry layout: host numbers and metric sets (migration 019).

Each name list is stored once (`telemetry_sets`), each host once (`telemetry_hosts`);
a row carries their ids. Ids are made in their own short transaction before the batch's,
and cached (per database, for the process) only once committed, so a rolled-back batch
never leaves the cache holding an id the database does not have. Ids are never deleted.
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
    """What a database holds: the layout, host numbers, metric-set ids."""

    wide: bool
    hosts: dict[str, int] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)  # by widecopy.set_key
    #: a batch's answer only: each message's metric-set id, by (host, seq)
    rows: dict[tuple[str, int], int] = field(default_factory=dict)


# One Ids per database, shared by a process's writer threads (dict updates are atomic
# under the interpreter lock), found by server, database name and the database's oid: a
# database dropped and made again under the same name (tests) is another one.
_BY_DB: dict[tuple[str, int, str, int], Ids] = {}
_DB_OF: weakref.WeakKeyDictionary[Conn, tuple[str, int, str, int]] = (
    weakref.WeakKeyDictionary())


def ids(conn: Conn) -> Ids:
    """This database's ids, learning the layout on first use."""
    key = _DB_OF.get(conn)
    if key is None:
        row = conn.execute("SELECT oid, to_regclass('telemetry_rows') IS NOT NULL"
                           " FROM pg_database WHERE datname = current_database()").fetchone()
        assert row is not None  # the database we are connected to exists
        key = _DB_OF[conn] = (conn.info.host, conn.info.port, conn.info.dbname, int(row[0]))
        if key not in _BY_DB:
            _BY_DB[key] = Ids(wide=bool(row[1]))
    return _BY_DB[key]


def resolve(conn: Conn, messages: Iterable[Message]) -> Ids:
    """The batch's ids: every host and metric set of the messages' readings (made if new).

    The answer holds this batch's ids only, so another writer thread clearing or filling
    the shared cache meanwhile cannot take one away before the batch is encoded.
    """
    known = ids(conn)
    if not known.wide:
        return known
    out = Ids(True)
    new_hosts: set[str] = set()
    new_sets: dict[str, widecopy.SetKey] = {}
    keyed: list[tuple[tuple[str, int], str]] = []
    for m in messages:
        if m.snapshot is None or not m.snapshot.readings:
            continue
        if (h := known.hosts.get(m.host)) is None:
            new_hosts.add(m.host)
        else:
            out.hosts[m.host] = h
        key = widecopy.set_key(m)
        keyed.append(((m.host, m.seq), key))
        if (s := known.sets.get(key)) is None:
            if key not in new_sets:
                new_sets[key] = widecopy.set_pairs(m)
        else:
            out.sets[key] = s
    if new_hosts or new_sets:
        _make(conn, known, out, new_hosts, new_sets)
    out.rows = {row: out.sets[key] for row, key in keyed}
    return out


def _make(conn: Conn, known: Ids, out: Ids, new_hosts: set[str],
          new_sets: dict[str, widecopy.SetKey]) -> None:
    """Make the missing ids (their own transaction) into `out`, and cache them."""
    with conn.transaction():
        if new_hosts:
            names = sorted(new_hosts)
            conn.execute("INSERT INTO telemetry_hosts (host_id) SELECT unnest(%s::text[])"
                         " ORDER BY 1 ON CONFLICT DO NOTHING", (names,))
            out.hosts.update(conn.execute(
                "SELECT host_id, id FROM telemetry_hosts WHERE host_id = ANY(%s)",
                (names,)).fetchall())
        made = _make_sets(conn, new_sets) if new_sets else {}
    out.sets.update(made)
    # Outside a transaction the ids are committed now and may be cached; inside a
    # caller's they could still roll back, so they serve this batch only.
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        if len(known.sets) + len(made) > _CACHE_MAX:
            known.sets.clear()
        known.hosts.update({h: out.hosts[h] for h in new_hosts})
        known.sets.update(made)


def _make_sets(conn: Conn, sets: dict[str, widecopy.SetKey]) -> dict[str, int]:
    """Insert the sets not stored yet, through one binary COPY into a temporary table
    (psycopg adapting 80 names a set cost 135 µs of collector CPU each), inserted in digest
    order so two collectors inserting the same sets queue instead of deadlocking; their ids."""
    data, digests = widecopy.encode_sets(sets.values())
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS telemetry_sets_in (digest bytea,"
                 " components text[], metrics text[]) ON COMMIT DELETE ROWS")
    with conn.cursor() as cur, cur.copy(
            "COPY telemetry_sets_in (digest, components, metrics) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(data)
    conn.execute("INSERT INTO telemetry_sets (digest, components, metrics)"
                 " SELECT DISTINCT ON (digest) digest, components, metrics"
                 " FROM telemetry_sets_in ORDER BY digest ON CONFLICT (digest) DO NOTHING")
    found: dict[bytes, int] = dict(conn.execute(
        "SELECT digest, id FROM telemetry_sets WHERE digest = ANY(%s)",
        (digests,)).fetchall())
    return {k: found[d] for d, k in zip(digests, sets, strict=True)}
