"""Acknowledgements leave in arrival order whatever order the writers commit in."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.model import Received
from collector.mqtt import AckOrder

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def raws(first: int, last: int) -> list[Received]:
    return [Received("t", b"", mid=i + 1, qos=1, received_at=T0, index=i)
            for i in range(first, last)]


def test_a_later_batch_committed_first_waits_for_the_earlier_one() -> None:
    order = AckOrder()
    assert order.release(raws(3, 6)) == []  # writer B committed messages 3-5 first
    got = order.release(raws(0, 3))  # writer A's 0-2 commit: all six go, in order
    assert [r.index for r in got] == [0, 1, 2, 3, 4, 5]
    assert order.release(raws(6, 7))[0].index == 6


def test_a_gap_holds_everything_after_it() -> None:
    order = AckOrder()
    assert [r.index for r in order.release(raws(0, 2))] == [0, 1]
    assert order.release(raws(3, 5)) == []  # 2 is still being written
    assert [r.index for r in order.release(raws(2, 3))] == [2, 3, 4]
