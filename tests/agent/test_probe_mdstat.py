"""mdstat probe over time: a rebuild longer than its limit warns (raid_rebuild_slow), the
start is kept across agent restarts; checks are not timed (captured procfs fixture)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.probes import Limits, ProbeContext, ProbeResult, default_registry
from agent.probes.base import Probe, StateStore
from agent.root import Root
from agent.spool import Spool
from tests.agent.test_probe_edac import Clock

HOUR = 3600.0
FINISHED = "Personalities : [raid1]\nmd8 : active raid1 sdb1[1] sda1[0]\n" \
           "      195310144 blocks [2/2] [UU]\n\nunused devices: <none>\n"


def mdstat(state: StateStore, clock: Clock, limits: Limits | None = None) -> Probe:
    """The mdstat probe with an injected wall clock and state."""
    ctx = ProbeContext("h", wall=clock, state=state, limits=limits or Limits())
    (p,) = default_registry().build(["mdstat"], ctx)
    return p


def judged(result: ProbeResult, cid: str) -> tuple[str, str | None]:
    """(status, failure) of one array."""
    (state,) = [s for s in result.states if s.id == cid]
    return state.status, state.failure


# hours after the first collection -> expected (md8 resyncing, md201 checking, md6 degraded)
CASES = [
    (0.0, ("ok", None), ("ok", None), ("failed", "raid_degraded")),
    (23.9, ("ok", None), ("ok", None), ("failed", "raid_degraded")),
    (24.0, ("warning", "raid_rebuild_slow"), ("ok", None), ("failed", "raid_degraded")),
    (30.0, ("warning", "raid_rebuild_slow"), ("ok", None), ("failed", "raid_degraded")),
]


def test_rebuild_slow_across_a_restart(tmp_path: Path, replay_root: Callable[..., Path]) -> None:
    root = Root(replay_root(mdstat=True))
    clock = Clock(1_000_000.0)
    start = clock.t
    spool = Spool(tmp_path / "spool.db", "h")
    got, expected = [], []
    for hours, md8, md201, md6 in CASES:
        clock.t = start + hours * HOUR
        # a new agent process each time: the rebuild's start comes from the spool
        result = mdstat(spool, clock).collect(root)
        got.append((judged(result, "raid:md8"), judged(result, "raid:md201"),
                    judged(result, "raid:md6")))
        expected.append((md8, md201, md6))
    assert got == expected
    assert result.states[[s.id for s in result.states].index("raid:md8")].detail == (
        "resync at 8.5% after 30.0 h")
    spool.close()


@pytest.mark.parametrize("limit_h", [1.0, 48.0])
def test_limit_is_configurable_and_a_finished_rebuild_forgets(
    tmp_path: Path, replay_root: Callable[..., Path], limit_h: float
) -> None:
    path = replay_root(mdstat=True)
    clock = Clock(0.0)
    p = mdstat(Spool(tmp_path / "s.db", "h"), clock, Limits(raid_rebuild_limit_s=limit_h * HOUR))
    p.collect(Root(path))
    clock.t = 2 * HOUR
    slow = limit_h <= 2
    assert judged(p.collect(Root(path)), "raid:md8") == (
        ("warning", "raid_rebuild_slow") if slow else ("ok", None))
    (path / "proc" / "mdstat").write_text(FINISHED)
    clock.t = 3 * HOUR
    assert judged(p.collect(Root(path)), "raid:md8") == ("ok", None)
    (path / "proc" / "mdstat").write_text(
        FINISHED.replace("[UU]\n", "[UU]\n      [=>...]  resync =  1.0% (1/2) finish=9min\n"))
    clock.t = 4 * HOUR  # a new resync starts its own count
    assert judged(p.collect(Root(path)), "raid:md8") == ("ok", None)
