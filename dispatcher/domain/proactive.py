"""Proactive jobs from predictions: who plans them, which spare they may hold, what acts. Pure.

A proactive job has no SLA clock, no credit and no escalation timer; the only nudge is a
daily reminder to its technician. Failures always come first: a technician with a live SLA
job is never handed planned work, and a proactive job never takes the last spare of a part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.domain.assign import SKILL_FOR_KIND, Technician, on_shift

#: A technician holds at most this many live planned jobs: about half a shift of swaps, so
#: one person is not handed a site's whole backlog while colleagues have none.
MAX_LIVE_PER_TECH = 4
#: Spares of a part kept on the shelf for failures; a proactive job takes one only above it.
KEEP_FOR_FAILURES = 1
#: The only nudge a planned job gets: one reminder a day while it is not done.
REMIND_EVERY = timedelta(days=1)
#: Nobody fit now: try again then (someone may come on shift); there is no clock to race.
RETRY = timedelta(minutes=15)
#: A planned (not acknowledged) job stays with a technician this long after their shift
#: ended, then goes back to planning: an hour lets someone who stays late or swaps a shift
#: keep it, yet the work does not wait a whole night while the next shift could do it.
#: Configurable as dispatcher.proactive_off_shift_minutes.
OFF_SHIFT_WINDOW = timedelta(hours=1)


#: The collector's rules fire on every message while the evidence holds, so a closed
#: prediction of the same part and slug re-opens at once. After a person closed one, planning
#: stays quiet: a false alarm for a week (the evidence has to outlast a firmware quirk), done
#: work for a day (the new part's telemetry should have cleared the rule by then).
QUIET_AFTER = {"dismissed": timedelta(days=7), "done": timedelta(days=1)}


class ProactiveState(StrEnum):
    """A proactive job's life; mirrored by the CHECK in schemas/sql/012_proactive.sql."""

    PLANNED = "planned"
    ACKNOWLEDGED = "acknowledged"
    DONE = "done"
    DISMISSED = "dismissed"


LIVE = frozenset({ProactiveState.PLANNED, ProactiveState.ACKNOWLEDGED})


@dataclass(frozen=True)
class Action:
    """One technician action: from which states, to which state."""

    name: str
    sources: frozenset[ProactiveState]
    target: ProactiveState


ACTIONS: dict[str, Action] = {
    "acknowledge": Action("acknowledge", frozenset({ProactiveState.PLANNED}),
                          ProactiveState.ACKNOWLEDGED),
    "done": Action("done", frozenset(LIVE), ProactiveState.DONE),
    "dismiss": Action("dismiss", frozenset(LIVE), ProactiveState.DISMISSED),
}


def choose(kind: str, site: str, techs: Sequence[Technician], planned: Mapping[str, int],
           now: datetime, tz: ZoneInfo) -> str | None:
    """The on-shift technician of the site with the skill, no live SLA job and the fewest
    planned jobs (ties: smaller id); None when nobody fits now."""
    skill = SKILL_FOR_KIND.get(kind)
    fit = [t for t in techs
           if t.site == site and t.role == "technician" and t.open_jobs == 0
           and (skill is None or skill in t.skills) and on_shift(t, now, tz)
           and planned.get(t.id, 0) < MAX_LIVE_PER_TECH]
    if not fit:
        return None
    return min(fit, key=lambda t: (planned.get(t.id, 0), t.id)).id


def spare_part(available: Mapping[str, int]) -> str | None:
    """A part (of those that fit) a proactive job may hold: one with more than the kept
    reserve available; the first by part number, so the choice is the same every time."""
    for part in sorted(available):
        if available[part] > KEEP_FOR_FAILURES:
            return part
    return None


def can_act(role: str, person: str | None, assignee: str, manager_site: str | None,
            job_site: str) -> bool:
    """Only the assigned technician, or a manager of the job's site, acts on it."""
    if role == "technician":
        return person == assignee
    return role == "manager" and manager_site == job_site


def transition(state: ProactiveState, action: Action) -> ProactiveState | None:
    """The new state; the same state for a repeated tap; None when the action does not apply."""
    if state is action.target:
        return state
    return action.target if state in action.sources else None


def off_shift_since(tech: Technician, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the technician's current time off began (their last shift end); None on shift."""
    if on_shift(tech, now, tz):
        return None
    local = now.astimezone(tz)
    end = tech.shift_end
    last = local.replace(hour=end.hour, minute=end.minute, second=end.second,
                         microsecond=end.microsecond)
    if last > local:
        last -= timedelta(days=1)
    return last


def replan_reason(state: ProactiveState, site: str, tech: Technician | None, now: datetime,
                  tz: ZoneInfo, window: timedelta = OFF_SHIFT_WINDOW) -> str | None:
    """Why a live job goes back to planning, or None when it stays with its technician.

    Only a planned job moves: an acknowledged one is the technician's promise to do it.
    `tech` is None when the technician is no longer active.
    """
    if state is not ProactiveState.PLANNED:
        return None
    if tech is None:
        return "technician inactive"
    if tech.site != site or tech.role != "technician":
        return f"{tech.id} no longer works as a technician at {site}"
    since = off_shift_since(tech, now, tz)
    if since is None or now - since < window:
        return None
    return f"{tech.id} off shift since {since.strftime('%H:%M')} ({tz.key})"


def remind_due(planned_at: datetime, reminded_at: datetime | None, now: datetime) -> bool:
    """Whether a live job's daily reminder is due."""
    return now - (reminded_at or planned_at) >= REMIND_EVERY


def quiet_until(closed_state: str | None, closed_at: datetime | None) -> datetime | None:
    """Until when a re-opened prediction is not planned, after the last one a person closed."""
    quiet = QUIET_AFTER.get(closed_state or "")
    if quiet is None or closed_at is None:
        return None
    return closed_at + quiet
