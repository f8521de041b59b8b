"""The agent's durable outbox: message sequence numbers and messages not yet acknowledged.

One SQLite file (WAL) may hold many hosts (the simulator runs many virtual agents on one
file); every row belongs to one host. A message is stored before it is published and
deleted only when the broker acknowledges it, so nothing is lost across restarts or
broker outages, and ``seq`` keeps increasing across restarts.

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
from dataclasses import dataclass
from pathlib import Path

#: Drain order: births and states first (they describe the host), then events, then
#: telemetry; oldest first within a priority.
PRIORITY = {"birth": 0, "state": 0, "event": 1, "telemetry": 2}
#: 64 MiB: about a day of 30 s telemetry from a large server while the broker is away.
DEFAULT_CAP_BYTES = 64 * 1024 * 1024
#: How long a writer waits for another process's lock before failing.
BUSY_TIMEOUT_S = 30.0

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
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (host, prio, id);
CREATE TABLE IF NOT EXISTS probe_state (
    host TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (host, key)
);
"""


@dataclass(frozen=True)
class SpoolItem:
    """One stored message waiting for the broker's acknowledgement."""

    id: int
    topic: str
    payload: bytes
    qos: int
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
    ) -> None:
        """Open (or create) the spool; ``durable`` fsyncs each commit (power-loss safe seq)."""
        self.host = host
        self.cap_bytes = cap_bytes
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
        self._size = self._total_size()
        self._rows = self.count()  # kept in step by put/delete/trim: no query on an idle loop
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
                "INSERT INTO outbox (host, kind, prio, topic, payload, qos, retain, size, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.host,
                    kind,
                    PRIORITY[kind],
                    topic,
                    payload,
                    qos,
                    int(retain),
                    len(payload),
                    time.time(),
                ),
            )
            self._size += len(payload)
            self._rows += 1
            if self._size > self.cap_bytes:
                self._trim()

    def _trim(self) -> None:
        """Drop the oldest telemetry until under the cap; events and births are kept."""
        excess = self._size - self.cap_bytes
        rows = self._db.execute(
            "SELECT id, size FROM outbox WHERE host = ? AND kind = 'telemetry' ORDER BY id",
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
        self._rows -= len(doomed)

    def pending(self, limit: int = 100) -> list[SpoolItem]:
        """Up to ``limit`` stored messages: births, states and events first, oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, qos, retain, kind FROM outbox WHERE host = ? "
            "ORDER BY prio, id LIMIT ?",
            (self.host, limit),
        ).fetchall()
        return [SpoolItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def delete(self, item_id: int) -> None:
        """Forget a message the broker acknowledged."""
        with self._tx():
            row = self._db.execute(
                "DELETE FROM outbox WHERE id = ? AND host = ? RETURNING size",
                (item_id, self.host),
            ).fetchone()
        if row is not None:
            self._size -= int(row[0])
            self._rows -= 1

    def waiting(self) -> int:
        """How many messages of this host wait, from memory (this process owns its rows)."""
        return self._rows

    def count(self) -> int:
        """How many messages of this host wait."""
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE host = ?", (self.host,))
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
