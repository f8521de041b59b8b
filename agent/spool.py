"""The agent's durable outbox: message sequence numbers, and the messages it sends.

One SQLite file (WAL) may hold many hosts (the simulator runs many virtual agents on one
file); every row belongs to one host. A message is stored before it is published and
marked acknowledged when the broker's PUBACK comes, so nothing is lost across restarts
or broker outages, and ``seq`` keeps increasing across restarts.

An acknowledged message is kept for ``retention_s`` (default 24 h, inside the size cap)
so that the collector can ask for it again (``requeue``): the broker acknowledged it, but
a broker that restarts can still lose it before any collector has it (agent.commands).

A message's seq is committed in the same transaction as its row (``draft_seq`` then
``put(seq=...)``): a process killed between numbering a message and storing it reuses
that seq after a restart instead of leaving a hole. Only a seq that must be promised
before its message exists (the last will's) is committed alone, by ``reserve_seq``.
One process owns one host's rows at a time.

The same file keeps the probes' small durable state (``probe_state``: EDAC counter
offsets across reboots, per-serial SMART baselines, a NIC's usual speed), so an agent has
one database file, not two.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Drain order: births and states first (they describe the host), then events, then
#: telemetry; oldest first within a priority.
PRIORITY = {"birth": 0, "state": 0, "event": 1, "telemetry": 2}
#: 64 MiB: about a day of 30 s telemetry from a large server while the broker is away.
DEFAULT_CAP_BYTES = 64 * 1024 * 1024
#: How long a writer waits for another process's lock before failing.
BUSY_TIMEOUT_S = 30.0
#: How long an acknowledged message stays for a resend (the collector asks within minutes;
#: a day covers a collector or database outage of a day).
DEFAULT_RETENTION_S = 24 * 3600.0
#: How often acknowledged messages past retention are deleted.
PRUNE_EVERY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seq (
    host TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    prio INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_state (
    host TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (host, key)
);
"""
#: Columns added when acknowledged messages began to be kept (a spool file of an older
#: agent gains them on open; its rows, all unacknowledged, keep seq NULL and drain as before).
_COLUMNS = {
    "seq": "ALTER TABLE outbox ADD COLUMN seq INTEGER",
    "acked": "ALTER TABLE outbox ADD COLUMN acked REAL",  # NULL: waiting for the broker
    "resent": "ALTER TABLE outbox ADD COLUMN resent INTEGER NOT NULL DEFAULT 0",
}
_INDEXES = """
DROP INDEX IF EXISTS outbox_drain;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (host, prio, id) WHERE acked IS NULL;
CREATE INDEX IF NOT EXISTS outbox_seq ON outbox (host, seq) WHERE seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_acked ON outbox (host, acked) WHERE acked IS NOT NULL;
"""


@dataclass(frozen=True)
class Requeued:
    """What a resend request found: sent again, already waiting to go, not in the spool
    (past retention or the cap, a will's seq the broker holds, or never this host's)."""

    again: int
    waiting: int
    missing: int


@dataclass(frozen=True)
class SpoolItem:
    """One stored message waiting for the broker's acknowledgement."""

    id: int
    topic: str
    payload: bytes
    qos: int
    #: False for a resend: an old retained birth or state must not replace the current one
    retain: bool
    kind: str


class Spool:
    """The durable outbox and sequence counter of one host, in a possibly shared file."""

    def __init__(
        self,
        path: str | Path,
        host: str,
        *,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        durable: bool = True,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) the spool; ``durable`` fsyncs each commit (power-loss safe seq).

        ``durable=False`` still survives the process being killed (WAL), not a power cut.
        """
        self.host = host
        self.cap_bytes = cap_bytes
        self.retention_s = retention_s
        self.clock = clock
        self._next_prune = 0.0
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) below.
        self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a seq handed out is never handed out again, even after a power cut.
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        with self._tx():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
            for column, ddl in _COLUMNS.items():
                if column not in have:
                    self._db.execute(ddl)
            for stmt in _INDEXES.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
        self._size = self._total_size()
        self._rows = self.count()  # kept in step by put/ack/trim: no query on an idle loop
        self._last = self._stored_seq()

    def _tx(self) -> _Tx:
        """A write transaction that takes the file's write lock at once."""
        return _Tx(self._db)

    def _total_size(self) -> int:
        """Bytes of this host's stored payloads."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM outbox WHERE host = ?", (self.host,)
        ).fetchone()
        return int(row[0])

    def _stored_seq(self) -> int:
        """The last seq this host committed (0 before the first)."""
        row = self._db.execute("SELECT last FROM seq WHERE host = ?", (self.host,)).fetchone()
        return int(row[0]) if row else 0

    def _commit_seq(self, seq: int) -> None:
        """Record ``seq`` as used, inside the caller's transaction."""
        self._db.execute(
            "INSERT INTO seq (host, last) VALUES (?, ?) "
            "ON CONFLICT (host) DO UPDATE SET last = max(last, excluded.last)",
            (self.host, seq),
        )

    def draft_seq(self) -> int:
        """The next seq, committed only by the ``put`` that stores its message."""
        self._last += 1
        return self._last

    def keep_seq(self, seq: int) -> None:
        """Commit a drafted seq whose message is not stored here (the broker holds the will)."""
        with self._tx():
            self._commit_seq(seq)

    def reserve_seq(self) -> int:
        """The next seq, committed at once (for a message the broker may publish later)."""
        seq = self.draft_seq()
        self.keep_seq(seq)
        return seq

    def next_seq(self) -> int:
        """The next sequence number of this host (1 first), persisted before it is returned."""
        return self.reserve_seq()

    def put(
        self, topic: str, payload: bytes, qos: int, retain: bool, kind: str, seq: int | None = None
    ) -> None:
        """Store a message (and commit its drafted ``seq``); over the cap, drop old telemetry."""
        if kind not in PRIORITY:
            raise ValueError(f"unknown message kind {kind!r}")
        with self._tx():
            if seq is not None:
                self._commit_seq(seq)
            self._db.execute(
                "INSERT INTO outbox (host, kind, prio, topic, payload, qos, retain, size, created,"
                " seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.host,
                    kind,
                    PRIORITY[kind],
                    topic,
                    payload,
                    qos,
                    int(retain),
                    len(payload),
                    self.clock(),
                    seq,
                ),
            )
            self._size += len(payload)
            self._rows += 1
            if self._size > self.cap_bytes:
                self._trim()

    def _trim(self) -> None:
        """Under the cap again: acknowledged messages go first (oldest first), then the
        oldest waiting telemetry; waiting events and births are kept."""
        excess = self._size - self.cap_bytes
        for where, waiting in (("acked IS NOT NULL", False),
                               ("acked IS NULL AND kind = 'telemetry'", True)):
            rows = self._db.execute(
                f"SELECT id, size FROM outbox WHERE host = ? AND {where} ORDER BY id",  # noqa: S608
                (self.host,),
            )
            doomed: list[tuple[int]] = []
            for row_id, size in rows:
                if excess <= 0:
                    break
                doomed.append((row_id,))
                excess -= size
                self._size -= size
            self._db.executemany("DELETE FROM outbox WHERE id = ?", doomed)
            if waiting:
                self._rows -= len(doomed)
            if excess <= 0:
                return

    def pending(self, limit: int = 100) -> list[SpoolItem]:
        """Up to ``limit`` messages waiting for the broker: births, states and events first,
        oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, qos, retain AND NOT resent, kind FROM outbox"
            " WHERE host = ? AND acked IS NULL ORDER BY prio, id LIMIT ?",
            (self.host, limit),
        ).fetchall()
        return [SpoolItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def ack(self, item_id: int) -> None:
        """The broker acknowledged a message: keep it for a resend until retention ends."""
        now = self.clock()
        with self._tx():
            row = self._db.execute(
                "UPDATE outbox SET acked = ? WHERE id = ? AND host = ? AND acked IS NULL"
                " RETURNING id", (now, item_id, self.host)).fetchone()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY_S
                self._prune(now)
        if row is not None:
            self._rows -= 1

    def _prune(self, now: float) -> None:
        """Delete acknowledged messages past retention, inside the caller's transaction."""
        rows = self._db.execute(
            "DELETE FROM outbox WHERE host = ? AND acked IS NOT NULL AND acked < ?"
            " RETURNING size", (self.host, now - self.retention_s)).fetchall()
        self._size -= sum(int(r[0]) for r in rows)

    def delete(self, item_id: int) -> None:
        """Forget a message for good (the broker refused it: resending cannot help)."""
        with self._tx():
            row = self._db.execute(
                "DELETE FROM outbox WHERE id = ? AND host = ? RETURNING size, acked IS NULL",
                (item_id, self.host),
            ).fetchone()
        if row is not None:
            self._size -= int(row[0])
            self._rows -= int(row[1])

    def requeue(self, first_seq: int, last_seq: int) -> Requeued:
        """Send the acknowledged messages with seqs first_seq..last_seq again (the collector
        never got them); what was found, what is still waiting anyway, what is gone."""
        with self._tx():
            again = self._db.execute(
                "UPDATE outbox SET acked = NULL, resent = 1 WHERE host = ? AND seq BETWEEN ? AND ?"
                " AND acked IS NOT NULL RETURNING seq", (self.host, first_seq, last_seq)
            ).fetchall()
            waiting = self._db.execute(
                "SELECT count(*) FROM outbox WHERE host = ? AND seq BETWEEN ? AND ?"
                " AND acked IS NULL", (self.host, first_seq, last_seq)).fetchone()
        self._rows += len(again)
        found = len(again)
        still = int(waiting[0]) - found if waiting else 0
        return Requeued(found, still, last_seq - first_seq + 1 - found - still)

    def kept(self) -> int:
        """How many acknowledged messages of this host are kept for a resend."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE host = ? AND acked IS NOT NULL", (self.host,))
        return int(row.fetchone()[0])

    def waiting(self) -> int:
        """How many messages of this host wait, from memory (this process owns its rows)."""
        return self._rows

    def count(self) -> int:
        """How many messages of this host wait for the broker."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE host = ? AND acked IS NULL", (self.host,))
        return int(row.fetchone()[0])

    def load_state(self, key: str) -> str | None:
        """A probe's stored value under ``key`` for this host, or None."""
        row = self._db.execute(
            "SELECT value FROM probe_state WHERE host = ? AND key = ?", (self.host, key)
        ).fetchone()
        return str(row[0]) if row else None

    def save_state(self, key: str, value: str) -> None:
        """Store a probe's value under ``key`` for this host (committed at once)."""
        with self._tx():
            self._db.execute(
                "INSERT INTO probe_state (host, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (host, key) DO UPDATE SET value = excluded.value",
                (self.host, key, value),
            )

    def close(self) -> None:
        """Close the file."""
        self._db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
