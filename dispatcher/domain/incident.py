"""The incident's and the job's life: every transition there is, as data.

``dispatcher/store/incidents.py`` is the only code that changes an incident's or a job's
state, and it asks ``step`` (and ``job_step``) first: a transition not in these tables
is refused there. docs/architecture.md draws its state table from ``TABLE``.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.states import IncidentState as S
from schemas.states import JobState as J
from schemas.states import sql_list as sql_list  # the one spelling of a state list in SQL


class Event(StrEnum):
    """What moves an incident (and who causes it, in ``Row.by``)."""

    DISPATCH = "dispatch"
    ACKNOWLEDGE = "acknowledge"
    ARRIVE = "arrive"  # on site
    REPLACE = "replace"
    DECLINE = "decline"
    REASSIGN = "reassign"
    TRANSFER = "transfer"  # a manager gives the job to another technician
    REOPEN = "reopen"
    VERIFY = "verify"
    PAUSE = "pause"
    RESUME = "resume"
    CONFIRM = "confirm"
    AUTO_CLOSE = "auto_close"


#: An incident still being fixed (the clock runs, or is paused).
OPEN = frozenset({S.DETECTED, S.DISPATCHED, S.ACKNOWLEDGED, S.ON_SITE, S.REPLACED, S.PAUSED})
#: Open and not paused: the SLA clock runs.
RUNNING = OPEN - {S.PAUSED}
#: A job a technician still holds.
LIVE_JOB = frozenset({J.DISPATCHED, J.ACKNOWLEDGED, J.ON_SITE, J.REPLACED})
#: A job that is over.
FINISHED_JOB = frozenset(J) - LIVE_JOB


@dataclass(frozen=True)
class Row:
    """One line of the state table: from these states, on this event, to that state."""

    sources: frozenset[S]
    event: Event
    target: S | None  # None: the live job's state, or detected without one (a resume)
    by: str
    why: str


TABLE: tuple[Row, ...] = (
    Row(frozenset({S.DETECTED}), Event.DISPATCH, S.DISPATCHED, "dispatcher",
        "a technician is chosen and a job created"),
    Row(frozenset({S.DISPATCHED}), Event.ACKNOWLEDGE, S.ACKNOWLEDGED, "technician",
        "the technician takes the job"),
    Row(frozenset({S.DISPATCHED, S.ACKNOWLEDGED}), Event.ARRIVE, S.ON_SITE, "technician",
        "the technician is at the rack"),
    Row(frozenset({S.ACKNOWLEDGED, S.ON_SITE}), Event.REPLACE, S.REPLACED, "technician",
        "the part is swapped; telemetry still has to verify it"),
    Row(frozenset({S.DISPATCHED, S.ACKNOWLEDGED}), Event.DECLINE, S.DETECTED, "technician",
        "the technician cannot take it: the one transfer"),
    Row(frozenset({S.DISPATCHED}), Event.REASSIGN, S.DISPATCHED, "timer",
        "not acknowledged in time: the next technician"),
    Row(frozenset({S.DISPATCHED, S.ACKNOWLEDGED}), Event.TRANSFER, S.DISPATCHED, "manager",
        "the manager gives it to another technician (before anyone is at the rack)"),
    Row(frozenset({S.REPLACED}), Event.REOPEN, S.ON_SITE, "timer",
        "replaced but not verified in time: back to the rack"),
    Row(OPEN, Event.VERIFY, S.VERIFIED, "telemetry",
        "the agent reports the part healthy (a new serial in its slot)"),
    Row(RUNNING, Event.PAUSE, S.PAUSED, "manager or customer",
        "a cause the policy excludes from the clock"),
    Row(frozenset({S.PAUSED}), Event.RESUME, None, "manager or customer",
        "the clock runs again; the deadline moves by the paused time"),
    Row(frozenset({S.VERIFIED}), Event.CONFIRM, S.CLOSED, "customer",
        "only the customer closes"),
    Row(frozenset({S.VERIFIED}), Event.AUTO_CLOSE, S.CLOSED, "auto",
        "not confirmed within the quiet period"),
)
_BY_KEY: dict[tuple[S, Event], Row] = {(s, r.event): r for r in TABLE for s in r.sources}


class Refused(Exception):
    """A transition the table does not have."""

    def __init__(self, state: str, event: Event) -> None:
        allowed = sorted(s.value for r in TABLE if r.event is event for s in r.sources)
        super().__init__(f"an incident that is '{state}' cannot {event.value}; it can from "
                         f"{', '.join(allowed)}")
        self.state, self.event = state, event


def resume_state(job_state: str | None) -> S:
    """After a pause: the live job's state, or waiting for one."""
    if job_state in LIVE_JOB:
        return S(job_state)
    return S.DETECTED


def step(state: str, event: Event, job_state: str | None = None) -> S:
    """The state ``event`` leads to from ``state``; Refused when the table has no such row."""
    try:
        row = _BY_KEY[(S(state), event)]
    except (KeyError, ValueError):
        raise Refused(state, event) from None
    return row.target if row.target is not None else resume_state(job_state)


#: A job's own transitions: event -> (from job states, to job state).
JOB_TABLE: dict[Event, tuple[frozenset[J], J]] = {
    Event.ACKNOWLEDGE: (frozenset({J.DISPATCHED}), J.ACKNOWLEDGED),
    Event.ARRIVE: (frozenset({J.DISPATCHED, J.ACKNOWLEDGED}), J.ON_SITE),
    Event.REPLACE: (frozenset({J.ACKNOWLEDGED, J.ON_SITE}), J.REPLACED),
    Event.DECLINE: (frozenset({J.DISPATCHED, J.ACKNOWLEDGED}), J.DECLINED),
    Event.REASSIGN: (frozenset({J.DISPATCHED}), J.CANCELLED),
    Event.TRANSFER: (frozenset({J.DISPATCHED, J.ACKNOWLEDGED}), J.CANCELLED),
    Event.REOPEN: (frozenset({J.REPLACED}), J.ON_SITE),
    Event.VERIFY: (LIVE_JOB, J.DONE),
}


def job_step(state: str, event: Event) -> J | None:
    """The job state ``event`` leads to, or None when the job is not in a source state."""
    sources, target = JOB_TABLE[event]
    return target if state in sources else None


def markdown() -> str:
    """The state table as docs/architecture.md shows it (a test holds the two together)."""
    order = list(S)
    lines = ["| from | event | to | by | why |", "| --- | --- | --- | --- | --- |"]
    for r in TABLE:
        sources = "any open state" if r.sources == OPEN else "any running state" \
            if r.sources == RUNNING else ", ".join(s.value for s in order if s in r.sources)
        to = r.target.value if r.target else "the live job's state, or detected"
        lines.append(f"| {sources} | {r.event.value} | {to} | {r.by} | {r.why} |")
    return "\n".join(lines)
