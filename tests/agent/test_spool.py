"""The spool: persistent seq, drain order, acknowledgement, cap, shared file."""

from __future__ import annotations

from pathlib import Path

from agent.spool import Spool


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
