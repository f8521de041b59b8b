"""Scoring: each technician's predicted time to a verified fix of a job, and who has most slack.

Predicted finish = when the technician is free of their current jobs + walking time to the
rack's room + fetching the spare from the store room + their own repair time for that kind
(the median of their past jobs, or a default) + the agent's verification lag. Pure: values
and `now` in, decisions out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from dispatcher.domain.assign import SKILL_FOR_KIND, Technician, on_shift

#: Hands-on minutes (on site -> replaced) when a technician has too few jobs of a kind to learn
#: from; hot-swap parts are quick, a DIMM or CPU means opening the chassis.
DEFAULT_REPAIR_MINUTES: dict[str, float] = {
    "disk": 15, "raid": 30, "dimm": 25, "fan": 10, "psu": 10, "nic": 15, "cpu": 45,
    "host": 20, "chassis": 30, "bmc": 20, "temp": 15,
}
FALLBACK_REPAIR_MINUTES = 20.0  # a kind not in the table
MIN_SAMPLES = 3  # fewer past jobs than this: the median says more about luck than the person
DEFAULT_WALK_MINUTES = 5.0  # a room the site did not list, on a site that set no "*"
#: Telemetry confirms the new part on the agent's next report (30 s interval) or the one after.
VERIFY_LAG = timedelta(minutes=1)
#: No fitting spare on site: a part comes from the depot; a same-day courier is about 4 hours.
NO_SPARE_DELAY = timedelta(hours=4)
MIN_REMAINING = timedelta(minutes=1)  # a job running over its estimate still needs a moment


@dataclass(frozen=True)
class Layout:
    """A site's walking minutes by room ("*" any other) and the store-room pickup minutes."""

    walk: Mapping[str, float] = field(default_factory=dict)
    pickup_minutes: float = 3.0

    def walk_time(self, room: str | None) -> timedelta:
        """Minutes to walk to a rack in this room."""
        minutes = self.walk.get(room or "", self.walk.get("*", DEFAULT_WALK_MINUTES))
        return timedelta(minutes=minutes)


@dataclass(frozen=True)
class Job:
    """An incident waiting for a technician, as scoring sees it."""

    id: int
    kind: str
    room: str | None
    deadline: datetime
    spare: bool | None = None  # True: fetch from store room; False: none on site; None: no part
    excluded: frozenset[str] = frozenset()  # technicians who had it before (one transfer)


@dataclass(frozen=True)
class Profile:
    """A technician with what they still have to do and how fast they are, per kind."""

    tech: Technician
    busy_until: datetime  # when their current jobs are done (<= now: free)
    repair: Mapping[str, timedelta] = field(default_factory=dict)  # learned; else the default
    shift_end: datetime | None = None  # the end of the current shift (None: round the clock)

    def repair_time(self, kind: str) -> timedelta:
        """Their learned repair time for the kind, or the default."""
        if kind in self.repair:
            return self.repair[kind]
        return timedelta(minutes=DEFAULT_REPAIR_MINUTES.get(kind, FALLBACK_REPAIR_MINUTES))


@dataclass(frozen=True)
class Choice:
    """Who takes a job, when the fix should be verified and the slack left to the deadline."""

    technician: str
    finish: datetime
    slack: timedelta


def learned(samples: Sequence[timedelta], kind: str) -> timedelta | None:
    """Median of a technician's past repair times of one kind, once there are enough."""
    if len(samples) < MIN_SAMPLES:
        return None
    return timedelta(seconds=median(s.total_seconds() for s in samples))


def duration(job: Job, p: Profile, layout: Layout) -> timedelta:
    """From leaving for the job to its verified fix: walk, pickup, repair, verification."""
    extra = timedelta(minutes=layout.pickup_minutes) if job.spare else timedelta(0)
    if job.spare is False:
        extra = NO_SPARE_DELAY
    return layout.walk_time(job.room) + extra + p.repair_time(job.kind) + VERIFY_LAG


def busy_time(job: Job, p: Profile, layout: Layout) -> timedelta:
    """How long the job keeps the technician's hands busy (not the courier, not telemetry)."""
    extra = timedelta(minutes=layout.pickup_minutes) if job.spare else timedelta(0)
    return layout.walk_time(job.room) + extra + p.repair_time(job.kind)


def remaining(kind: str, state: str, dispatched_at: datetime, p: Profile, layout: Layout,
              room: str | None, now: datetime) -> timedelta:
    """What a live job still needs of its technician (nothing once the part is replaced)."""
    if state == "replaced":
        return timedelta(0)
    total = layout.walk_time(room) + p.repair_time(kind)
    return max(MIN_REMAINING, total - (now - dispatched_at))


def shift_end(tech: Technician, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the shift the technician is on now ends (None: all day)."""
    start, end = tech.shift_start, tech.shift_end
    if start == end or end.hour == 23 and end.minute == 59 and start.hour == start.minute == 0:
        return None
    local = now.astimezone(tz)
    candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def can_take(job: Job, p: Profile, site: str, now: datetime, tz: ZoneInfo) -> bool:
    """Hard filters: a technician of the site, on shift now, with the skill, not excluded."""
    skill = SKILL_FOR_KIND.get(job.kind)
    t = p.tech
    return (t.site == site and t.role == "technician" and t.id not in job.excluded
            and (skill is None or skill in t.skills) and on_shift(t, now, tz))


def finish(job: Job, p: Profile, layout: Layout, start: datetime) -> datetime | None:
    """Predicted verified fix when started at `start`; None when the shift ends first."""
    done = start + duration(job, p, layout)
    if p.shift_end is not None and start + busy_time(job, p, layout) > p.shift_end:
        return None  # a part must not be left half-fitted at the end of a shift
    return done


def late_by_queue(job: Job, p: Profile, layout: Layout, now: datetime) -> bool:
    """The technician's current jobs, not the job itself, would make it miss the deadline."""
    queued = finish(job, p, layout, max(now, p.busy_until))
    alone = finish(job, p, layout, now)
    return (queued is None or queued > job.deadline) and alone is not None \
        and alone <= job.deadline


def choose(job: Job, profiles: Sequence[Profile], layout: Layout, site: str, now: datetime,
           tz: ZoneInfo) -> Choice | None:
    """The technician with most slack (deadline - predicted fix); None when nobody can.

    A technician whose current jobs would make this one late is passed over; only when every
    fitting technician is in that case does the soonest to finish take it (late, but sooner
    than anyone else could).
    """
    best: Choice | None = None
    queued: Choice | None = None
    for p in profiles:
        if not can_take(job, p, site, now, tz):
            continue
        done = finish(job, p, layout, max(now, p.busy_until))
        if done is None:
            continue
        c = Choice(p.tech.id, done, job.deadline - done)
        if late_by_queue(job, p, layout, now):
            queued = _better(queued, c)
        else:
            best = _better(best, c)
    return best or queued


def _better(a: Choice | None, b: Choice) -> Choice:
    """More slack wins; ties go to the smaller id, so the choice is the same every time."""
    if a is None or (b.slack, a.technician) > (a.slack, b.technician):
        return b
    return a
