"""rasdaemon's SQLite database: memory controller errors (``mc_event``) and machine checks
(``mce_record``), as ras-record.c creates them.

rasdaemon keeps its records across reboots with a timestamp each, so a rate over a
window is exact here, unlike the kernel's counters that restart at every boot. The file
is opened read-only; rows are read incrementally by their id, so a database of years is
read whole once and then only its new rows each interval.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.root import Root

#: Where rasdaemon keeps its database on a host (RASSTATEDIR/RAS_DB_FNAME), and where a
#: replay root holds it (design.md's table).
LIVE_DB = "var/lib/rasdaemon/ras-mc_event.db"
REPLAY_DB = "cmd/ras-mc_event.db"
#: ras-mc-handler.c stamps events with strftime "%Y-%m-%d %H:%M:%S %z"
#: ("2024-03-01 10:15:02 +0000"); very old versions left the zone out.
_TS_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S")
#: MCi_STATUS bit 61, UC: the error was not corrected (Intel SDM vol. 3B, 15.3.2.2).
MCI_STATUS_UC = 1 << 61
#: MCi_STATUS bit 57, PCC: the processor context is corrupt, the machine cannot go on.
MCI_STATUS_PCC = 1 << 57


@dataclass(frozen=True)
class McEvent:
    """One memory controller error record (table mc_event)."""

    id: int
    at: float | None  # epoch seconds; None when the timestamp does not parse
    count: int
    corrected: bool
    label: str  # the DIMM label, as EDAC's dimm_label (may be empty)
    mc: int


@dataclass(frozen=True)
class MceRecord:
    """One machine check record (table mce_record)."""

    id: int
    at: float | None
    socket: int
    cpu: int
    bank: int
    bank_name: str
    status: int  # MCi_STATUS as an unsigned 64-bit value
    message: str

    @property
    def uncorrected(self) -> bool:
        """Whether the hardware did not correct it (UC bit)."""
        return bool(self.status & MCI_STATUS_UC)

    @property
    def context_corrupt(self) -> bool:
        """The processor could not go on (PCC): the machine went down for it."""
        return bool(self.status & MCI_STATUS_PCC)


def database(root: Root) -> Path | None:
    """The rasdaemon database of this root, when there is one."""
    return root.file_path(LIVE_DB if root.live else REPLAY_DB)


def parse_ts(text: str | None) -> float | None:
    """Epoch seconds of a rasdaemon timestamp; naive ones are taken as UTC."""
    for fmt in _TS_FORMATS:
        try:
            ts = datetime.strptime((text or "").strip(), fmt)  # noqa: DTZ007 - zone below
        except ValueError:
            continue
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.timestamp()
    return None


def _rows(path: Path, sql: str, after_id: int) -> list[tuple[object, ...]]:
    """Rows of a read-only query, or none when the table is missing or the file is busy."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return []
    try:
        return list(db.execute(sql, (after_id,)))
    except sqlite3.Error:
        return []  # no such table (rasdaemon built without MCE), or a locked file
    finally:
        db.close()


def mc_events(path: Path, after_id: int = 0) -> list[McEvent]:
    """Memory controller error records with an id above ``after_id``, oldest first."""
    rows = _rows(
        path,
        "SELECT id, timestamp, err_count, err_type, label, mc FROM mc_event "
        "WHERE id > ? ORDER BY id",
        after_id,
    )
    return [
        McEvent(
            int(str(r[0])),
            parse_ts(str(r[1]) if r[1] is not None else None),
            int(str(r[2] or 1)),
            # mc_event_error_type(): "Corrected", "Uncorrected", "Fatal", "Info"
            str(r[3] or "").strip().lower() == "corrected",
            str(r[4] or "").strip(),
            int(str(r[5] or 0)),
        )
        for r in rows
        if str(r[3] or "").strip().lower() != "info"
    ]


def mce_records(path: Path, after_id: int = 0) -> list[MceRecord]:
    """Machine check records with an id above ``after_id``, oldest first."""
    rows = _rows(
        path,
        "SELECT id, timestamp, socketid, cpu, bank, bank_name, status, error_msg "
        "FROM mce_record WHERE id > ? ORDER BY id",
        after_id,
    )
    return [
        MceRecord(
            int(str(r[0])),
            parse_ts(str(r[1]) if r[1] is not None else None),
            int(str(r[2] or 0)),
            int(str(r[3] or 0)),
            int(str(r[4] or 0)),
            str(r[5] or "").strip(),
            # SQLite keeps 64-bit integers signed: bit 63 (VAL) makes a status negative
            int(str(r[6] or 0)) & 0xFFFF_FFFF_FFFF_FFFF,
            str(r[7] or "").strip(),
        )
        for r in rows
    ]
