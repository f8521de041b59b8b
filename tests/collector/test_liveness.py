"""Table tests of collector.liveness: readiness, the silence watchdog, the input gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.liveness import Action, Hold, InputGate, Limits, Observed, Watchdog, silent_sites

LIM = Limits(canary_timeout_s=15.0, stall_s=30.0)


def seen(now: float, heard: float | None = None, connected: bool = True,
         unacked: float = 0.0, full: bool = False, at: float = 0.0) -> Observed:
    return Observed(now, connected, at if connected else None, heard, unacked, full)


@pytest.mark.parametrize(
    ("observed", "db", "ready", "flowing", "reason"),
    [
        (seen(10, heard=9), True, True, True, None),
        (seen(10, heard=9, connected=False), True, False, False, "broker disconnected"),
        (seen(10, heard=9), False, False, True, "database unavailable"),
        (seen(100, heard=99, unacked=31), True, False, True,
         "oldest unacknowledged message waited 31 s (limit 30 s)"),
        (seen(10, heard=None), True, False, False, "connected, waiting for the first message"),
        (seen(20, heard=None), True, False, False,
         "nothing heard for 20 s, not even a canary (limit 15 s)"),
        (seen(40, heard=20), True, False, False,
         "nothing heard for 20 s, not even a canary (limit 15 s)"),
        (seen(40, heard=20, full=True), True, False, False,
         "nothing heard for 20 s, not even a canary (limit 15 s); we are behind"),
        # heard before this connection opened: this connection has heard nothing yet
        (seen(50, heard=5, at=10), True, False, False,
         "nothing heard for 40 s, not even a canary (limit 15 s)"),
    ],
)
def test_readiness_says_why(observed: Observed, db: bool, ready: bool, flowing: bool,
                            reason: str | None) -> None:
    v = Watchdog(LIM).judge(observed, db)
    assert (v.ready, v.flowing) == (ready, flowing)
    if reason is not None:
        assert reason in v.reasons


def test_silence_is_met_with_resubscribe_then_reconnects_one_timeout_apart() -> None:
    w = Watchdog(LIM)
    actions = [(t, w.judge(seen(t, heard=0.0), True).action) for t in range(0, 80, 5)]
    assert [(t, a) for t, a in actions if a is not Action.NONE] == [
        (20, Action.RESUBSCRIBE), (35, Action.RECONNECT), (50, Action.RECONNECT),
        (65, Action.RECONNECT)]
    # heard again: back to zero, so the next silence starts with a resubscribe
    assert w.judge(seen(81, heard=80.5), True).ready
    assert w.judge(seen(100, heard=80.5), True).action is Action.RESUBSCRIBE


def test_back_pressure_is_not_met_with_reconnects() -> None:
    w = Watchdog(LIM)
    assert all(w.judge(seen(t, heard=0.0, full=True), True).action is Action.NONE
               for t in range(0, 120, 5))


T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_gate_judges_silence_only_from_several_intervals_after_input_flows() -> None:
    g = InputGate(resume_intervals=3)
    assert g.hold(0.9).judged_from(30) is None  # never flowed yet: judge nothing
    g.observe(T0, True)
    g.observe(T0 + timedelta(seconds=50), True)  # still flowing: the start stays
    assert g.hold(0.9).judged_from(30) == T0 + timedelta(seconds=90)
    assert g.hold(0.9).judged_from(2) == T0 + timedelta(seconds=6)
    g.observe(T0 + timedelta(seconds=60), False)
    assert g.hold(0.9).judged_from(30) is None
    g.observe(T0 + timedelta(seconds=100), True)
    assert g.hold(0.9) == Hold(T0 + timedelta(seconds=100), 3, 0.9)


@pytest.mark.parametrize(
    ("racks", "reporting", "held"),
    [
        ({"s1": ["r1"] * 6 + ["r2"] * 6}, {"s1": 12}, {"s1"}),  # the whole site, two racks
        ({"s1": ["r1"] * 6}, {"s1": 12}, set()),  # one rack of two: a facility
        ({"s1": ["r1"] * 12}, {"s1": 12}, set()),  # a one-rack site: its rack, judged
        ({"s1": ["r1"] * 6 + ["r2"] * 4}, {"s1": 12}, set()),  # 10 of 12: under 90 %
        ({"s1": ["r1"] * 6 + ["r2"] * 5}, {"s1": 12}, {"s1"}),  # 11 of 12
        ({"s1": ["r1", "r2"], "s2": ["r1"]}, {"s1": 2, "s2": 40}, {"s1"}),
        ({"s1": [None, None]}, {"s1": 2}, set()),  # no racks declared: no second rack
    ],
)
def test_sites_silent_at_once_are_held(racks: dict[str, list[str | None]],
                                       reporting: dict[str, int], held: set[str]) -> None:
    assert silent_sites(racks, reporting, 0.9) == held
