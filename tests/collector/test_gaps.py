"""collector.gaps: which holes are lost messages, and when their agents are asked again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.gaps import (
    MAX_RANGE,
    Gap,
    Hole,
    Keys,
    Open,
    Policy,
    Step,
    decide,
    retry_after,
    runs,
    scan,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
P = Policy(grace_s=10, give_up_s=900, retention_s=86400)


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


def test_an_old_hole_is_a_gap_and_the_watermark_moves_to_the_top() -> None:
    got = scan([Keys("h", 10, 20, [Hole(12, 16, ago(30))])], {}, NOW, P)
    assert got.gaps == [Gap("h", 13, 15)]
    assert got.marks == {"h": 20}


def test_a_young_hole_holds_the_watermark_just_below_it() -> None:
    got = scan([Keys("h", 10, 30, [Hole(12, 14, ago(60)), Hole(20, 25, ago(3)),
                                   Hole(27, 29, ago(60))])], {}, NOW, P)
    assert got.gaps == [Gap("h", 13, 13)]  # the hole after the young one waits with it
    assert got.marks == {"h": 20}


def test_reserved_will_seqs_are_not_gaps() -> None:
    got = scan([Keys("h", 0, 10, [Hole(2, 4, ago(30)), Hole(5, 9, ago(30))])],
               {"h": [3, 7, 99]}, NOW, P)
    assert got.gaps == [Gap("h", 6, 6), Gap("h", 8, 8)]


def test_a_long_gap_is_cut_into_ranges_an_agent_takes() -> None:
    got = scan([Keys("h", 0, 25_002, [Hole(0, 25_002, ago(30))])], {}, NOW, P)
    assert [g.size for g in got.gaps] == [MAX_RANGE, MAX_RANGE, 5_001]
    assert got.gaps[0].first == 1
    assert got.gaps[-1].last == 25_001


def test_no_new_keys_above_the_mark_moves_nothing() -> None:
    assert scan([Keys("h", 10, 10, [])], {}, NOW, P).marks == {}


def test_runs() -> None:
    assert runs([5, 1, 2, 3, 9, 10]) == [(1, 3), (5, 5), (9, 10)]
    assert runs(range(1, 8), cap=3) == [(1, 3), (4, 6), (7, 7)]


def gap(**kw: object) -> Open:
    base: dict[str, object] = dict(id=1, host="h", first=5, last=8, seen_at=ago(0), requests=0,
                                   next_request_at=ago(0), unfilled=False, present=0,
                                   host_online=True, host_since=None)
    base.update(kw)
    return Open(**base)  # type: ignore[arg-type]


def test_asked_at_once_then_with_backoff() -> None:
    d = decide(gap(), NOW, P)
    assert d.step is Step.ASK
    assert d.next_request_at == NOW + timedelta(seconds=30)
    assert [retry_after(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]
    assert decide(gap(requests=1, next_request_at=NOW + timedelta(seconds=5)), NOW,
                  P).step is Step.WAIT


def test_filled_when_every_seq_is_stored() -> None:
    assert decide(gap(present=4, requests=2), NOW, P).step is Step.FILLED
    assert decide(gap(present=4, unfilled=True, seen_at=ago(5000)), NOW, P).step is Step.FILLED


def test_given_up_with_a_reason_an_operator_can_act_on() -> None:
    d = decide(gap(seen_at=ago(901), requests=6, present=1, host_online=False,
                   host_since=ago(1000)), NOW, P)
    assert d.step is Step.GIVE_UP
    assert d.reason is not None
    assert d.reason.startswith("3 of seqs 5-8 not resent within 15 min, asked 6 times")
    assert "offline since 2026-12-03T11:43:20+00:00" in d.reason
    online = decide(gap(seen_at=ago(901), last=5), NOW, P).reason
    assert online is not None
    assert "seq 5 not" in online
    assert "online" in online


def test_an_unfilled_gap_is_still_asked_for_until_retention_ends() -> None:
    assert decide(gap(seen_at=ago(5000), unfilled=True), NOW, P).step is Step.ASK
    d = decide(gap(seen_at=ago(86400), unfilled=True), NOW, P)
    assert d.step is Step.EXPIRE
    assert d.reason is not None
    assert "retention" in d.reason
