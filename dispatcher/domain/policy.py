"""Timed policy: which timers an incident needs, and what each decides when it fires. Pure.

Every timer is planned from a snapshot of the incident (recorded times only) and carries a
guard; a fired timer acts only if the current plan still holds the same kind, guard and due
time, so a late, repeated or superseded timer does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.domain import assign, credit, incident, proactive, sla


class TimerKind(StrEnum):
    """What a timer watches; mirrored by the CHECK on timers.kind."""

    ACK_TIMEOUT = "ack_timeout"
    RISK = "risk"
    BREACH = "breach"
    VERIFY_TIMEOUT = "verify_timeout"


class PauseReason(StrEnum):
    """The only causes the credit policy excludes from the clock; mirrored by pauses.reason."""

    CUSTOMER_DENIED_ACCESS = "customer_denied_access"
    CUSTOMER_MAINTENANCE_WINDOW = "customer_maintenance_window"


#: Incident states in which the clock runs and timers are armed (a pause disarms them all).
RUNNING: frozenset[str] = frozenset(s.value for s in incident.RUNNING)
#: States in which no one is at the rack yet: the risk escalation watches these.
NOT_ON_SITE = frozenset({"detected", "dispatched", "acknowledged"})


@dataclass(frozen=True)
class TimerPolicy:
    """The windows of the promise table, as configuration."""

    ack_window: timedelta = timedelta(minutes=5)  # design: "three rings"
    # Design: no one on site at 45 min of the 60-min promise, i.e. 15 min before the deadline;
    # a contract not longer than this lead has no risk step (its breach comes first).
    risk_lead: timedelta = timedelta(minutes=15)
    verify_window: timedelta = timedelta(minutes=30)  # "replaced" until telemetry proves it
    # Verified but not confirmed by the customer: closed as "auto" after this quiet period
    # (three days: a weekend plus a working day to look).
    auto_close_after: timedelta = timedelta(hours=72)
    credit_classes: credit.ClassPolicy = credit.ClassPolicy()  # period per failure class
    # Planned (proactive) work goes back to planning when its technician is off shift this
    # long; not a promise window, but the loop's only other duration (dispatcher.service.proactive).
    proactive_off_shift: timedelta = proactive.OFF_SHIFT_WINDOW


@dataclass(frozen=True)
class Job:
    """The incident's live job, as the timers need to see it."""

    id: int
    technician: str
    state: str
    dispatched_at: datetime
    replaced_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """An incident at one instant: recorded times and what timers already did."""

    incident: int
    state: str
    detected_at: datetime
    sla_minutes: float
    pauses: tuple[sla.Pause, ...]
    job: Job | None  # the live job, if any
    technicians_tried: int  # jobs ever created, declined and cancelled ones included
    acted: frozenset[tuple[str, str]]  # (kind, key) of timers that already took effect

    @property
    def deadline(self) -> datetime:
        """detected_at + the contract, shifted by every closed pause."""
        ends = [p.end for p in self.pauses if p.end is not None]
        return sla.deadline(self.detected_at, self.sla_minutes, self.pauses,
                            max([self.detected_at, *ends]))


@dataclass(frozen=True)
class TimerSpec:
    """One timer an incident should have: kind, due time and guard."""

    kind: TimerKind
    due_at: datetime
    key: str  # what it acts on once ("" for once per incident)
    epoch: int  # number of pauses so far: a pause supersedes every armed timer

    @property
    def guard(self) -> str:
        """The stored guard: the key and the pause epoch."""
        return f"{self.key}|p{self.epoch}"


def key_of(guard: str) -> str:
    """The key part of a stored guard."""
    return guard.rpartition("|p")[0]


def paused_since(pauses: Sequence[sla.Pause], start: datetime) -> timedelta:
    """Closed paused time after `start` (each window shifts by exactly the paused time)."""
    total = timedelta(0)
    for p in pauses:
        if p.end is not None and p.end > start:
            total += p.end - max(p.start, start)
    return total


def plan(s: Snapshot, p: TimerPolicy) -> tuple[TimerSpec, ...]:
    """Every timer the incident needs now; nothing while paused or once fixed."""
    if s.state not in RUNNING:
        return ()
    epoch, due = len(s.pauses), s.deadline
    out: list[TimerSpec] = []
    if (TimerKind.BREACH, "") not in s.acted:
        out.append(TimerSpec(TimerKind.BREACH, due, "", epoch))
    lead_fits = timedelta(minutes=s.sla_minutes) > p.risk_lead
    if s.state in NOT_ON_SITE and lead_fits and (TimerKind.RISK, "") not in s.acted:
        out.append(TimerSpec(TimerKind.RISK, due - p.risk_lead, "", epoch))
    j = s.job
    if j is not None and j.state == "dispatched":
        key = f"job={j.id}"
        if (TimerKind.ACK_TIMEOUT, key) not in s.acted:
            at = j.dispatched_at + p.ack_window + paused_since(s.pauses, j.dispatched_at)
            out.append(TimerSpec(TimerKind.ACK_TIMEOUT, at, key, epoch))
    if j is not None and j.state == "replaced" and j.replaced_at is not None:
        key = f"job={j.id},replaced={j.replaced_at.astimezone(UTC).isoformat()}"
        if (TimerKind.VERIFY_TIMEOUT, key) not in s.acted:
            at = j.replaced_at + p.verify_window + paused_since(s.pauses, j.replaced_at)
            out.append(TimerSpec(TimerKind.VERIFY_TIMEOUT, at, key, epoch))
    return tuple(out)


def is_live(kind: str, guard: str, due_at: datetime, s: Snapshot, p: TimerPolicy,
            now: datetime) -> bool:
    """Whether a fired timer still stands: due, and still in the incident's plan."""
    if due_at > now:
        return False
    return any(t.kind == kind and t.guard == guard and t.due_at == due_at for t in plan(s, p))


@dataclass(frozen=True)
class Notify:
    """Escalate: tell this person (None: there is no one to tell) why."""

    step: str
    to: str | None
    role: str
    reason: str


@dataclass(frozen=True)
class Reassign:
    """Move the job to the next best technician: the incident's one transfer."""

    job: int
    from_technician: str
    to_technician: str
    reason: str


@dataclass(frozen=True)
class Reopen:
    """Send the job back to the rack (telemetry did not confirm) and tell the manager."""

    job: int
    technician: str
    notify: Notify


def _hm(t: datetime) -> str:
    return t.strftime("%H:%M:%SZ") if t.utcoffset() == timedelta(0) else t.isoformat()


def _minutes(d: timedelta) -> str:
    m = d.total_seconds() / 60
    return f"{m:g} min"


def on_ack_timeout(s: Snapshot, choice: assign.Assign | assign.Escalate, manager: str | None,
                   p: TimerPolicy) -> Reassign | Notify:
    """First miss: the next best technician; a second miss (or no one else): the manager."""
    j = s.job
    assert j is not None  # is_live() only keeps an ack timer while its job is dispatched
    missed = f"{j.technician} did not acknowledge within {_minutes(p.ack_window)}"
    if s.technicians_tried >= assign.MAX_ASSIGNEES:
        return Notify(TimerKind.ACK_TIMEOUT, manager, "manager",
                      f"{missed}; the job was already transferred once, so it is never "
                      "passed to a third technician")
    if isinstance(choice, assign.Assign):
        return Reassign(j.id, j.technician, choice.technician, missed)
    return Notify(TimerKind.ACK_TIMEOUT, manager, "manager", f"{missed}; {choice.reason}")


def on_risk(s: Snapshot, manager: str | None, p: TimerPolicy) -> Notify:
    """No one on site with the risk lead left: tell the site manager."""
    into = timedelta(minutes=s.sla_minutes) - p.risk_lead
    return Notify(TimerKind.RISK, manager, "manager",
                  f"no one on site {_minutes(into)} into the {s.sla_minutes:g}-min promise; "
                  f"deadline {_hm(s.deadline)}")


def on_breach(s: Snapshot, executive: str | None) -> Notify:
    """The deadline passed with the failure not fixed: tell the executive on duty."""
    return Notify(TimerKind.BREACH, executive, "executive",
                  f"deadline {_hm(s.deadline)} passed with the incident '{s.state}'")


def on_late_fix(deadline: datetime, fixed: datetime, executive: str | None) -> Notify:
    """A fix verified after the deadline whose breach no timer reported: tell the executive.

    A breach timer acts only while the incident is open; when a late fix is verified before
    any pass fires it (a dispatcher down or starved across the deadline), verification
    records the breach instead, so the executive hears of every broken promise.
    """
    return Notify(TimerKind.BREACH, executive, "executive",
                  f"deadline {_hm(deadline)} passed; the fix was verified late at {_hm(fixed)}")


def on_verify_timeout(s: Snapshot, manager: str | None, p: TimerPolicy) -> Reopen:
    """No telemetry proof within the window after "replaced": reopen, tell the manager."""
    j = s.job
    assert j is not None  # is_live() keeps a verify timer only while its job is replaced
    assert j.replaced_at is not None
    return Reopen(j.id, j.technician, Notify(
        TimerKind.VERIFY_TIMEOUT, manager, "manager",
        f"{j.technician} marked the part replaced at {_hm(j.replaced_at)} but telemetry has "
        f"not confirmed it within {_minutes(p.verify_window)}; the job is reopened"))


def executive_on_duty(execs: Sequence[tuple[assign.Technician, ZoneInfo]], site: str,
                      now: datetime) -> str | None:
    """An executive on shift at the site, else on shift anywhere, else any; None if none."""
    def rank(e: tuple[assign.Technician, ZoneInfo]) -> tuple[bool, bool, str]:
        t, tz = e
        return (not assign.on_shift(t, now, tz), t.site != site, t.id)

    return min(execs, key=rank)[0].id if execs else None


def resume_state(job_state: str | None) -> str:
    """The incident's state after a pause: its live job's state, or waiting for one."""
    return job_state if job_state in RUNNING else "detected"


def auto_close_at(verified_at: datetime, p: TimerPolicy) -> datetime:
    """When a verified incident the customer has not confirmed closes by itself."""
    return verified_at + p.auto_close_after


def should_auto_close(state: str, verified_at: datetime | None, p: TimerPolicy,
                      now: datetime) -> bool:
    """Verified, unconfirmed, and the quiet period is over (the closing instant included)."""
    return state == "verified" and verified_at is not None \
        and auto_close_at(verified_at, p) <= now
