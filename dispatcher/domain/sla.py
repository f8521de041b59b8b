"""The SLA clock: deadline, elapsed time with pauses left out, breached or not. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Pause:
    """A stretch the policy excludes from the clock; end is None while it lasts."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class SlaStatus:
    """Where an incident stands against its promise at one instant."""

    deadline: datetime
    elapsed: timedelta
    remaining: timedelta
    breached: bool


def paused_time(pauses: Sequence[Pause], until: datetime) -> timedelta:
    """Total paused time up to `until` (an open pause counts up to `until`)."""
    total = timedelta(0)
    for p in pauses:
        end = min(p.end or until, until)
        if end > p.start:
            total += end - p.start
    return total


def deadline(detected_at: datetime, sla_minutes: float, pauses: Sequence[Pause],
             now: datetime) -> datetime:
    """detected_at + the contract's minutes, shifted by exactly the paused time."""
    return detected_at + timedelta(minutes=sla_minutes) + paused_time(pauses, now)


def status(detected_at: datetime, sla_minutes: float, pauses: Sequence[Pause],
           fixed_at: datetime | None, now: datetime) -> SlaStatus:
    """The clock at `now`, or frozen at the verified fix when there is one."""
    end = fixed_at or now
    due = deadline(detected_at, sla_minutes, pauses, end)
    elapsed = end - detected_at - paused_time(pauses, end)
    return SlaStatus(due, elapsed, due - end, end > due)
