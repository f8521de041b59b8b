"""The spool: persistent seq, drain order, acknowledgement, resend, retention, cap, shared
file, and a file an older agent wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.spool import PRUNE_EVERY_S, Requeued, Spool


def test_seq_starts_at_one_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, "web-01")
    assert [spool.next_seq() for _ in range(3)] == [1, 2, 3]
    spool.close()
    again = Spool(path, "web-01")
    assert again.next_seq() == 4
    again.close()


def test_hosts_share_one_file_with_their_own_seq_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    a, b = Spool(path, "a"), Spool(path, "b")
    assert (a.next_seq(), a.next_seq(), b.next_seq()) == (1, 2, 1)
    a.put("t/a", b"1", 1, False, "telemetry")
    b.put("t/b", b"2", 1, False, "telemetry")
    assert [i.topic for i in a.pending()] == ["t/a"]
    assert [i.topic for i in b.pending()] == ["t/b"]
    b.delete(a.pending()[0].id)  # another host's row is not b's to delete
    assert a.count() == 1


def test_pending_puts_births_and_events_first_then_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "h")
    spool.put("t", b"t1", 1, False, "telemetry")
    spool.put("e", b"e1", 1, False, "event")
    spool.put("t", b"t2", 1, False, "telemetry")
    spool.put("b", b"b1", 1, True, "birth")
    spool.put("s", b"s1", 1, True, "state")
    assert [i.payload for i in spool.pending()] == [b"b1", b"s1", b"e1", b"t1", b"t2"]
    assert [i.payload for i in spool.pending(2)] == [b"b1", b"s1"]
    birth = spool.pending(1)[0]
    assert (birth.qos, birth.retain, birth.kind) == (1, True, "birth")
    spool.delete(birth.id)
    assert spool.pending(1)[0].payload == b"s1"


def test_cap_drops_oldest_telemetry_never_events(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "h", cap_bytes=3000)
    spool.put("e", b"E" * 1000, 1, False, "event")
    for i in range(5):
        spool.put("t", bytes([48 + i]) * 500, 1, False, "telemetry")
    kept = spool.pending()
    assert kept[0].kind == "event"
    # 1000 + 5 * 500 = 3500 > 3000: the oldest telemetry went
    assert [i.payload[:1] for i in kept[1:]] == [b"1", b"2", b"3", b"4"]
    for _ in range(5):
        spool.put("e", b"E" * 1000, 1, False, "event")
    assert sum(1 for i in spool.pending() if i.kind == "event") == 6  # never dropped
    assert not any(i.kind == "telemetry" for i in spool.pending())


def test_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, "h")
    spool.put("t", b"x", 1, False, "telemetry")
    spool.close()
    assert [i.payload for i in Spool(path, "h").pending()] == [b"x"]


def test_a_drafted_seq_is_committed_only_with_its_row(tmp_path: Path) -> None:
    """A process killed between numbering and storing a message leaves no hole in seq."""
    path = tmp_path / "s.db"
    spool = Spool(path, "h")
    assert spool.draft_seq() == 1
    spool.put("t", b"1", 1, False, "telemetry", seq=1)
    assert spool.draft_seq() == 2  # numbered, never stored: as if killed here
    spool.close()
    again = Spool(path, "h")
    assert again.draft_seq() == 2
    assert again.reserve_seq() == 3  # a will's seq is kept without a row
    again.close()
    assert Spool(path, "h").draft_seq() == 4


def test_probe_state_survives_reopen_per_host(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    a, b = Spool(path, "a"), Spool(path, "b")
    a.save_state("edac:dimm:A1", '{"offset_ce": 3}')
    a.save_state("edac:dimm:A1", '{"offset_ce": 4}')
    assert b.load_state("edac:dimm:A1") is None  # another host's state is not b's
    a.close()
    again = Spool(path, "a")
    assert again.load_state("edac:dimm:A1") == '{"offset_ce": 4}'
    assert again.load_state("missing") is None


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _put(spool: Spool, seq: int, kind: str = "telemetry", size: int = 10,
         retain: bool = False) -> int:
    """Store one numbered message; its row id (the newest row of the drain order's kind)."""
    spool.put(f"hg/v1/iad1/h/{kind}", bytes([48 + seq % 10]) * size, 1, retain, kind, seq=seq)
    return max(i.id for i in spool.pending(1000))


def _seqs_waiting(path: Path, host: str = "h") -> list[int | None]:
    """The seqs of the rows waiting for the broker, in drain order, straight from the file."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq FROM outbox WHERE host = ? AND acked IS NULL"
                      " ORDER BY prio, id", (host,)).fetchall()
    db.close()
    return [r[0] for r in rows]


def test_ack_keeps_the_row_for_a_resend_but_not_in_the_drain(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "h", clock=Clock())
    first, second = _put(spool, 1), _put(spool, 2)
    assert (spool.waiting(), spool.kept()) == (2, 0)
    spool.ack(first)
    assert [i.id for i in spool.pending()] == [second]
    assert (spool.waiting(), spool.count(), spool.kept()) == (1, 1, 1)
    spool.ack(first)  # a second PUBACK for the same row changes nothing
    assert (spool.waiting(), spool.count(), spool.kept()) == (1, 1, 1)
    spool.ack(second)
    assert (spool.waiting(), spool.count(), spool.kept()) == (0, 0, 2)
    spool.close()
    again = Spool(tmp_path / "s.db", "h")
    assert (again.waiting(), again.kept(), again.pending()) == (0, 2, [])


def test_requeue_sends_acked_seqs_again_not_retained(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, "h", clock=Clock())
    birth = _put(spool, 1, "birth", retain=True)
    state = _put(spool, 2, "state", retain=True)
    tele = _put(spool, 3)
    _put(spool, 4)  # never acknowledged: still waiting when the resend comes
    originals = {i.id: i for i in spool.pending()}
    for row in (birth, state, tele):
        spool.ack(row)
    other = Spool(path, "other", clock=Clock())  # another host's seq 5 is not h's
    _put(other, 5)
    other.ack(other.pending()[0].id)

    # seqs 1..6: three acked, one waiting, 5 and 6 not this host's
    assert spool.requeue(1, 6) == Requeued(again=3, waiting=1, missing=2)
    assert (spool.waiting(), spool.count(), spool.kept()) == (4, 4, 0)
    assert _seqs_waiting(path) == [1, 2, 3, 4]
    resent = {i.id: i for i in spool.pending()}
    assert [resent[r].retain for r in (birth, state, tele)] == [False, False, False]
    for row in (birth, state, tele):  # the very message, not a new one
        assert (resent[row].payload, resent[row].topic, resent[row].kind, resent[row].qos) == (
            originals[row].payload, originals[row].topic, originals[row].kind, 1)
    assert other.kept() == 1

    # asked again before the broker took them: all still waiting, nothing doubled
    assert spool.requeue(1, 3) == Requeued(again=0, waiting=3, missing=0)
    assert spool.waiting() == 4
    spool.ack(birth)
    spool.close()
    reopened = Spool(path, "h", clock=Clock())
    assert reopened.requeue(1, 1) == Requeued(again=1, waiting=0, missing=0)
    assert [i.retain for i in reopened.pending() if i.id == birth] == [False]
    assert reopened.requeue(7, 9) == Requeued(again=0, waiting=0, missing=3)


def test_acked_rows_past_retention_are_pruned_every_prune_interval(tmp_path: Path) -> None:
    clock = Clock()
    start = clock.now
    spool = Spool(tmp_path / "s.db", "h", retention_s=100.0, clock=clock)
    old = _put(spool, 1)
    spool.ack(old)  # acked at start; this ack also prunes (nothing yet)
    clock.now = start + 50
    spool.ack(_put(spool, 2))  # acked at +50
    never = _put(spool, 3)  # waits however old it gets
    clock.now = start + 150  # seq 1 is past retention, seq 2 (acked at +50) just within it
    spool.ack(_put(spool, 4))
    assert spool.kept() == 2
    assert spool.requeue(1, 1) == Requeued(again=0, waiting=0, missing=1)

    clock.now = start + 150 + PRUNE_EVERY_S - 1  # seq 2 past retention, no prune due yet
    spool.ack(_put(spool, 5))
    assert spool.kept() == 3
    clock.now = start + 150 + PRUNE_EVERY_S
    spool.ack(_put(spool, 6))
    assert spool.kept() == 3  # seqs 4, 5, 6: seq 2 went
    assert spool.requeue(2, 2).missing == 1
    assert [i.id for i in spool.pending()] == [never]
    assert spool.waiting() == spool.count() == 1

    clock.now = start + 10_000  # everything acked is old; the waiting row stays
    spool.ack(never)
    assert (spool.kept(), spool.waiting(), spool.count()) == (1, 0, 0)


def test_pruned_bytes_leave_room_under_the_cap(tmp_path: Path) -> None:
    """What the prune deletes no longer counts against the cap (no telemetry dropped)."""
    clock = Clock()
    spool = Spool(tmp_path / "s.db", "h", cap_bytes=1000, retention_s=10.0, clock=clock)
    for seq in range(1, 10):
        spool.ack(_put(spool, seq, size=100))
    clock.now += 3600  # all nine acked rows are past retention and pruned by the next ack
    first = _put(spool, 10, size=100)
    spool.ack(first)
    assert spool.kept() == 1
    for seq in range(11, 20):  # 9 * 100 waiting + 100 kept = the cap, not over it
        _put(spool, seq, size=100)
    assert spool.count() == 9
    assert spool.kept() == 1


def test_trim_drops_acked_rows_oldest_first_before_waiting_telemetry(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, "h", cap_bytes=3000, clock=Clock())
    for seq, kind in ((1, "telemetry"), (2, "birth"), (3, "event")):
        spool.ack(_put(spool, seq, kind, size=500))
    _put(spool, 4, "birth", size=500)
    _put(spool, 5, "event", size=500)
    _put(spool, 6, "telemetry", size=500)  # 6 * 500 = the cap: nothing dropped yet
    assert (spool.kept(), spool.waiting()) == (3, 3)

    _put(spool, 7, "telemetry", size=500)  # 500 over: the oldest acked row goes
    assert spool.kept() == 2
    assert spool.requeue(1, 1).missing == 1
    assert _seqs_waiting(path) == [4, 5, 6, 7]
    assert spool.waiting() == spool.count() == 4

    _put(spool, 8, "telemetry", size=1000)  # 1000 over: both other acked rows go
    assert spool.kept() == 0
    assert _seqs_waiting(path) == [4, 5, 6, 7, 8]
    assert spool.waiting() == spool.count() == 5

    _put(spool, 9, "telemetry", size=500)  # nothing acked left: the oldest waiting telemetry
    assert _seqs_waiting(path) == [4, 5, 7, 8, 9]
    assert spool.waiting() == spool.count() == 5

    for seq in range(10, 20):  # events and births that wait are never dropped
        _put(spool, seq, "event" if seq % 2 else "birth", size=500)
    waiting = _seqs_waiting(path)
    assert set(range(10, 20)) | {4, 5} <= set(waiting)
    assert not {6, 7, 8, 9} & set(waiting)  # every waiting telemetry went first
    assert spool.waiting() == spool.count() == len(waiting)


def test_trim_drops_acked_rows_before_a_waiting_row_even_a_new_telemetry(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "s.db", "h", cap_bytes=1000, clock=Clock())
    spool.ack(_put(spool, 1, "event", size=600))
    _put(spool, 2, "telemetry", size=600)  # over the cap: the acked event goes, not this
    assert (spool.kept(), [i.payload[:1] for i in spool.pending()]) == (0, [b"2"])
    assert spool.waiting() == spool.count() == 1


def test_a_spool_file_of_an_older_agent_opens_keeps_and_drains_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE seq (host TEXT PRIMARY KEY, last INTEGER NOT NULL);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, kind TEXT NOT NULL,
            prio INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
            qos INTEGER NOT NULL, retain INTEGER NOT NULL, size INTEGER NOT NULL,
            created REAL NOT NULL);
        CREATE INDEX outbox_drain ON outbox (host, prio, id);
        INSERT INTO seq (host, last) VALUES ('h', 41);
        INSERT INTO outbox (host, kind, prio, topic, payload, qos, retain, size, created)
            VALUES ('h', 'birth', 0, 'hg/v1/iad1/h/birth', X'7B7D', 1, 1, 2, 1.0);
    """)
    db.close()

    spool = Spool(path, "h", clock=Clock())
    (old,) = spool.pending()
    assert (old.topic, old.payload, old.kind, old.qos, old.retain) == (
        "hg/v1/iad1/h/birth", b"{}", "birth", 1, True)
    assert (spool.waiting(), spool.count(), spool.kept()) == (1, 1, 0)
    assert spool.draft_seq() == 42
    spool.put("hg/v1/iad1/h/telemetry", b"t", 1, False, "telemetry", seq=42)
    assert [i.payload for i in spool.pending()] == [b"{}", b"t"]  # the old birth first
    spool.ack(old.id)
    assert (spool.waiting(), spool.kept()) == (1, 1)
    # its seq was never stored (NULL): a resend cannot find it, and says so
    assert spool.requeue(1, 42) == Requeued(again=0, waiting=1, missing=41)
    spool.close()

    db = sqlite3.connect(path)
    columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert {"seq", "acked", "resent"} <= columns
    assert "outbox_drain" not in indexes
    again = Spool(path, "h", clock=Clock())  # opening twice adds nothing twice
    assert (again.waiting(), again.kept(), again.draft_seq()) == (1, 1, 43)
