"""Assignment: which on-shift technician with the skill takes a job, or escalate. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

#: Component kind -> the skill a technician needs for it (None: any technician will do).
SKILL_FOR_KIND: dict[str, str | None] = {
    "disk": "disk", "raid": "disk", "dimm": "memory", "fan": "fan", "psu": "psu",
    "nic": "nic", "cpu": "cpu", "host": None, "chassis": None, "bmc": None,
    "temp": "fan",  # overheating is most often airflow: fans and filters
}
#: Design: a job may be reassigned at most once; the next miss escalates to the manager.
MAX_ASSIGNEES = 2


@dataclass(frozen=True)
class Technician:
    """A person who can take a job, as the assignment needs to see them."""

    id: str
    site: str
    role: str
    skills: frozenset[str]
    shift_start: time
    shift_end: time
    open_jobs: int = 0


@dataclass(frozen=True)
class Assign:
    """Give the job to this technician."""

    technician: str


@dataclass(frozen=True)
class Escalate:
    """No one can take it: tell the site manager why."""

    reason: str
    manager: str | None


def on_shift(tech: Technician, now: datetime, tz: ZoneInfo) -> bool:
    """Whether `now` falls in the technician's shift, in the site's local time."""
    local = now.astimezone(tz).time()
    start, end = tech.shift_start, tech.shift_end
    if start == end or (start == time(0) and end == time.max):
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end  # a shift across midnight


def choose(kind: str, site: str, techs: Sequence[Technician], previous: Sequence[str],
           manager: str | None, now: datetime, tz: ZoneInfo) -> Assign | Escalate:
    """Least-loaded on-shift technician at the site with the skill, never a third transfer."""
    if len(previous) >= MAX_ASSIGNEES:
        return Escalate("already transferred once; a third technician is never tried", manager)
    skill = SKILL_FOR_KIND.get(kind)
    fit = [
        t for t in techs
        if t.site == site and t.role == "technician" and t.id not in previous
        and (skill is None or skill in t.skills) and on_shift(t, now, tz)
    ]
    if not fit:
        need = f"skill '{skill}'" if skill else "any skill"
        return Escalate(f"no technician on shift at {site} with {need}", manager)
    best = min(fit, key=lambda t: (t.open_jobs, t.id))
    return Assign(best.id)
