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
    ([prof("a")], [job(i, deadline=200) for i in range(1, 7)], {1, 2, 3, 4}, 2),  # 4 slots
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
