"""Batch matching against greedy one-at-a-time: table-driven bursts with exact outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher.domain import matching
from dispatcher.domain.score import Job, Profile
from tests.domain.test_score import LAYOUT, NOW, UTC_TZ, job, m, prof


def plan_of(plan: dict[int, matching.Choice]) -> dict[int, tuple[str, timedelta]]:
    """Job -> (technician, minutes from NOW to the predicted fix)."""
    return {j: (c.technician, c.finish - NOW) for j, c in plan.items()}


def test_greedy_trap_batch_keeps_both_promises() -> None:
    # Job 1 is due first and either can do it; job 2 is a DIMM only Ana can fit. Greedy
    # gives job 1 to Ana (fastest, most slack), then job 2 queues behind her and breaks.
    profiles = [prof("ana", "disk,memory", repair=8), prof("bo", "disk", repair=20)]
    jobs = [job(1, deadline=30), job(2, deadline=40, kind="dimm")]
    greedy = matching.greedy(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    batch = matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    assert plan_of(greedy) == {1: ("ana", m(16)), 2: ("ana", m(15 + 33))}
    assert plan_of(batch) == {1: ("bo", m(28)), 2: ("ana", m(33))}
    assert (matching.breaches(jobs, greedy), matching.breaches(jobs, batch)) == (1, 0)


def test_one_technician_takes_several_in_sequence_soonest_deadline_first() -> None:
    profiles = [prof("ana", repair=8), prof("bo", busy=45)]
    jobs = [job(3, deadline=60), job(1, deadline=20), job(2, deadline=45)]
    batch = matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    # Ana: 4 walk + 3 pickup + 8 + 1 verify = 16 each; free again 1 min before each verify
    assert plan_of(batch) == {1: ("ana", m(16)), 2: ("ana", m(31)), 3: ("ana", m(46))}
    assert matching.breaches(jobs, batch) == 0


@pytest.mark.parametrize(("profiles", "jobs", "planned", "broken"), [
    ([], [job(1)], set(), 1),
    ([prof("a", "memory")], [job(1), job(2, kind="dimm")], {2}, 1),
    ([prof("a")], [job(i, deadline=200) for i in range(1, 7)], {1, 2, 3, 4, 5, 6}, 0),
    ([prof("a")], [job(i, deadline=100) for i in range(1, 7)], {1, 2, 3, 4, 5, 6}, 2),
    ([prof("a"), prof("b")], [job(1, spare=False), job(2)], {1, 2}, 1),  # no part: late anyway
])
def test_who_is_left_out(profiles: list[Profile], jobs: list[Job], planned: set[int],
                         broken: int) -> None:
    batch = matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    assert set(batch) == planned
    assert matching.breaches(jobs, batch) == broken


def test_breach_first_then_lateness() -> None:
    # Two jobs, one technician free now, one free in 30 min; only one can be on time. The
    # batch saves the one that can be saved and keeps the other's lateness small.
    profiles = [prof("a"), prof("b", busy=30)]
    jobs = [job(1, deadline=25), job(2, deadline=50)]
    batch = matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    assert plan_of(batch) == {1: ("a", m(23)), 2: ("a", m(45))}
    assert matching.breaches(jobs, batch) == 0


def test_single_job_matches_greedy() -> None:
    profiles = [prof("a", repair=20), prof("b", repair=8), prof("c", busy=5, repair=5)]
    jobs = [job(1)]
    assert plan_of(matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)) == \
        plan_of(matching.greedy(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ))


@pytest.mark.parametrize(("slack", "busy", "low", "high"), [
    (0, 20, 0.5, 0.5),  # no margin: a coin toss
    (6, 20, 0.15, 0.17),  # one sigma (30 % of 20 min) of margin
    (-6, 20, 0.83, 0.85),
    (30, 20, 0.0, 1e-6),
    (0.5, 1, 0.30, 0.31),  # a short job still slips by about a minute (the floor)
])
def test_breach_chance(slack: float, busy: float, low: float, high: float) -> None:
    j = job(1, deadline=60)
    got = matching.breach_chance(j, j.deadline - m(slack), m(busy))
    assert low <= got <= high


def test_batch_never_plans_more_breaches_than_greedy() -> None:
    # Many jobs, one slow and one fast technician: the slot estimate alone would be off, the
    # exact one-at-a-time plan is kept when it breaks fewer promises.
    profiles = [prof("a", repair=5), prof("b", "disk,memory", repair=28, busy=10)]
    jobs = [job(i, deadline=20 + 7 * i, kind="dimm" if i % 3 == 0 else "disk")
            for i in range(1, 8)]
    g = matching.greedy(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    b = matching.batch(jobs, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    assert matching.breaches(jobs, b) <= matching.breaches(jobs, g)
