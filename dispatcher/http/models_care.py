"""Answers of the customer's planned work and maintenance windows (see models.py)."""

from dispatcher.http.models import Json, Model, TimelineEntry


class WindowShown(Model):
    """One weekly maintenance window in the customer's local time."""

    days: list[str]
    start: str
    end: str
    timezone: str


class Windows(Model):
    """A customer's maintenance windows; an empty list: none (work when a technician is free)."""

    customer: str
    windows: list[WindowShown]
    updated_at: str | None
    updated_by: str | None


class SlotShown(Model):
    """A booked or offered slot (UTC) and the window occurrence it sits in."""

    start: str
    end: str
    window_start: str
    window_end: str


class PlannedWork(Model):
    """A proactive job as its customer sees it: the evidence, the plan, the timeline."""

    id: int
    state: str
    plan_state: str
    customer: str
    host: str
    site: str
    component: str
    kind: str
    prediction: str
    detected_at: str | None
    last_seen: str | None
    evidence: list[str]
    evidence_raw: Json | None
    spare_part: str | None
    part_note: str | None
    technician: str | None
    slot_start: str | None
    slot_end: str | None
    has_windows: bool
    plan: str
    choices: list[SlotShown]
    timeline: list[TimelineEntry]


class PlannedWorkPage(Model):
    """Planned work on the customer's hosts, newest first."""

    items: list[PlannedWork]
    next: int | None
