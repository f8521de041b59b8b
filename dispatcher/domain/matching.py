"""Batch assignment: a burst of jobs at one site matched to technicians at minimum cost.

Each technician offers a few slots (their 1st, 2nd, ... job from now), so one person may
take several jobs in sequence. The cost of a job in a slot puts broken promises first (the
chance each breaks, since real work runs longer or shorter than predicted), then minutes
late, then minutes to the fix (so that, all else equal, most slack wins), and
`scipy.optimize.linear_sum_assignment` finds the cheapest whole assignment. Each
technician's jobs keep the slot order the matching chose (a job that can still be saved goes
before a sooner one that cannot), and the finishes are recomputed in that order. Pure: values
and `now` in, decisions out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatcher.domain.score import (
    Choice,
    Job,
    Layout,
    Profile,
    busy_time,
    can_take,
    choose,
    finish,
)

#: Queue positions offered per technician: eight jobs of 20-40 min fill a shift; the matrix
#: (jobs x technicians x slots) stays small enough to solve in milliseconds.
MAX_SLOTS = 8
#: Weights that make the cost lexicographic: one broken promise outweighs any lateness (a
#: day is 1,440 minutes), a minute late outweighs any minutes to the fix.
W_BREACH = 1e9
W_LATE = 1e4
FORBIDDEN = 1e15  # a pair the hard filters rule out; never chosen while any other fits
#: Real hands-on time differs from the prediction by about 30 % (one sigma), so a plan with
#: no margin breaks half its promises; the cost counts each job's chance of breaking.
SPREAD = 0.3
MIN_SIGMA_S = 60.0  # even a short job can slip by a minute


def breach_chance(job: Job, done: datetime, busy: timedelta) -> float:
    """Chance the real fix lands past the deadline: real work runs about SPREAD either way."""
    slack = (job.deadline - done).total_seconds()
    sigma = max(SPREAD * busy.total_seconds(), MIN_SIGMA_S)
    return 0.5 * math.erfc(slack / (sigma * math.sqrt(2)))


def _cost(job: Job, done: datetime | None, busy: timedelta) -> float:
    if done is None:
        return FORBIDDEN
    late = max(0.0, (done - job.deadline).total_seconds() / 60)
    to_fix = (done - job.deadline).total_seconds() / 60 + 1e5  # kept positive, order-only
    return W_BREACH * breach_chance(job, done, busy) + W_LATE * late + to_fix


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
            each = busy_time(job, p, layout)  # earlier slots hold jobs of about this length
            for slot in range(k):
                ahead = start + slot * each
                cost[r, c * k + slot] = _cost(job, finish(job, p, layout, ahead),
                                              ahead - now + each)
    rows, cols = linear_sum_assignment(cost)
    taken: dict[str, list[tuple[int, Job]]] = {}
    for r, col in zip(rows, cols, strict=True):
        if cost[r, col] < FORBIDDEN:
            taken.setdefault(people[col // k].tech.id, []).append((int(col % k), jobs[r]))
    matched = _sequence(taken, {p.tech.id: p for p in people}, layout, now)
    # Slots price earlier jobs at this job's length, an approximation; when the exact
    # one-at-a-time plan breaks fewer promises, keep that one.
    simple = greedy(jobs, profiles, layout, site, now, tz)
    return min((matched, simple), key=lambda plan: _grade(jobs, plan, now))


def _grade(jobs: Sequence[Job], plan: dict[int, Choice],
           now: datetime) -> tuple[int, float, float]:
    """(promises broken, expected promises broken, minutes late) of a plan, lower is better."""
    chance, late = 0.0, 0.0
    for j in jobs:
        c = plan.get(j.id)
        if c is None:
            chance += 1.0
            continue
        chance += breach_chance(j, c.finish, c.finish - now)
        late += max(0.0, (c.finish - j.deadline).total_seconds() / 60)
    return breaches(jobs, plan), chance, late


def _sequence(taken: dict[str, list[tuple[int, Job]]], people: dict[str, Profile],
              layout: Layout, now: datetime) -> dict[int, Choice]:
    """Each technician's jobs in the slot order the matching chose, with their finishes."""
    out: dict[int, Choice] = {}
    for tech, mine in taken.items():
        p = people[tech]
        start = max(now, p.busy_until)
        for _, job in sorted(mine, key=lambda sj: (sj[0], sj[1].deadline, sj[1].id)):
            done = finish(job, p, layout, start)
            if done is None:
                continue  # past the shift end in this order: left for someone else
            out[job.id] = Choice(tech, done, job.deadline - done)
            start += busy_time(job, p, layout)  # free once replaced; telemetry does the rest
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
        p = people[c.technician]
        people[c.technician] = replace(p, busy_until=max(now, p.busy_until)
                                       + busy_time(job, p, layout))
    return out


def breaches(jobs: Sequence[Job], plan: dict[int, Choice]) -> int:
    """Promises a plan breaks: jobs predicted past their deadline, or left with nobody."""
    return sum(1 for j in jobs if j.id not in plan or plan[j.id].finish > j.deadline)
