"""Batch assignment: a burst of jobs at one site matched to technicians at minimum cost.

Each technician offers a few slots (their 1st, 2nd, ... job from now), so one person may
take several jobs in sequence. The cost of a job in a slot puts broken promises first, then
minutes late, then minutes to the fix (so that, all else equal, most slack wins), and
`scipy.optimize.linear_sum_assignment` finds the cheapest whole assignment. Each
technician's jobs are then done soonest deadline first (the order the phone app lists them),
and the finishes recomputed in that order. Pure: values and `now` in, decisions out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatcher.domain.score import (
    VERIFY_LAG,
    Choice,
    Job,
    Layout,
    Profile,
    can_take,
    choose,
    duration,
    finish,
)

MAX_SLOTS = 4  # a fifth queued job is more than an hour of work away: escalate it instead
#: Weights that make the cost lexicographic: one broken promise outweighs any lateness (a
#: day is 1,440 minutes), a minute late outweighs any minutes to the fix.
W_BREACH = 1e9
W_LATE = 1e4
FORBIDDEN = 1e15  # a pair the hard filters rule out; never chosen while any other fits


def _cost(job: Job, done: datetime | None) -> float:
    if done is None:
        return FORBIDDEN
    late = max(0.0, (done - job.deadline).total_seconds() / 60)
    to_fix = (done - job.deadline).total_seconds() / 60 + 1e5  # kept positive, order-only
    return (W_BREACH if late > 0 else 0.0) + W_LATE * late + to_fix


def batch(jobs: Sequence[Job], profiles: Sequence[Profile], layout: Layout, site: str,
          now: datetime, tz: ZoneInfo, slots: int = MAX_SLOTS) -> dict[int, Choice]:
    """Job id -> choice for every job someone can take; the others are left out."""
    people = [p for p in profiles if any(can_take(j, p, site, now, tz) for j in jobs)]
    if not jobs or not people:
        return {}
    k = min(slots, len(jobs))
    cost = np.full((len(jobs), len(people) * k), FORBIDDEN)
    for r, job in enumerate(jobs):
        for c, p in enumerate(people):
            if not can_take(job, p, site, now, tz):
                continue
            start = max(now, p.busy_until)
            # earlier slots hold jobs of about this length (hands free once it is replaced)
            each = duration(job, p, layout) - VERIFY_LAG
            for slot in range(k):
                cost[r, c * k + slot] = _cost(job, finish(job, p, layout, start + slot * each))
    rows, cols = linear_sum_assignment(cost)
    taken: dict[str, list[Job]] = {}
    for r, col in zip(rows, cols, strict=True):
        if cost[r, col] < FORBIDDEN:
            taken.setdefault(people[col // k].tech.id, []).append(jobs[r])
    return _sequence(taken, {p.tech.id: p for p in people}, layout, now)


def _sequence(taken: dict[str, list[Job]], people: dict[str, Profile], layout: Layout,
              now: datetime) -> dict[int, Choice]:
    """Each technician's jobs soonest deadline first, with the finishes that order gives."""
    out: dict[int, Choice] = {}
    for tech, mine in taken.items():
        p = people[tech]
        start = max(now, p.busy_until)
        for job in sorted(mine, key=lambda j: (j.deadline, j.id)):
            done = finish(job, p, layout, start)
            if done is None:
                continue  # past the shift end in this order: left for someone else
            out[job.id] = Choice(tech, done, job.deadline - done)
            start = done - VERIFY_LAG  # free once replaced; telemetry does the rest
    return out


def greedy(jobs: Sequence[Job], profiles: Sequence[Profile], layout: Layout, site: str,
           now: datetime, tz: ZoneInfo) -> dict[int, Choice]:
    """One job at a time, soonest deadline first, each to whoever has most slack then."""
    people = {p.tech.id: p for p in profiles}
    out: dict[int, Choice] = {}
    for job in sorted(jobs, key=lambda j: (j.deadline, j.id)):
        c = choose(job, list(people.values()), layout, site, now, tz)
        if c is None:
            continue
        out[job.id] = c
        people[c.technician] = replace(people[c.technician], busy_until=c.finish - VERIFY_LAG)
    return out


def breaches(jobs: Sequence[Job], plan: dict[int, Choice]) -> int:
    """Promises a plan breaks: jobs predicted past their deadline, or left with nobody."""
    return sum(1 for j in jobs if j.id not in plan or plan[j.id].finish > j.deadline)
