"""What the customer and the account team are told of a prediction and its plan. Pure.

A prediction's evidence is what the collector's rule recorded: the first evidence when it
opened and the newest since. `evidence` turns both into sentences a customer can read
("smart.attr_5_raw (reallocated sectors) rose from 0 to 8 between ... and ..."); `plan`
says when, which part and which spare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: SMART attributes the rising-counter rule reads, by the name a customer's admin knows.
SMART_NAMES = {"smart.attr_5_raw": "reallocated sectors",
               "smart.attr_187_raw": "reported uncorrectable errors",
               "smart.attr_188_raw": "command timeouts",
               "smart.attr_197_raw": "sectors pending reallocation",
               "smart.attr_198_raw": "offline uncorrectable sectors"}
_SKIP = frozenset({"seq", "source"})  # bookkeeping, not evidence


@dataclass(frozen=True)
class Prediction:
    """A prediction as a message needs it."""

    id: int
    host: str
    component: str
    kind: str
    prediction: str
    detected_at: datetime
    last_seen: datetime
    evidence: Mapping[str, Any]
    last_evidence: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """The planned replacement."""

    job: int
    slot_start: datetime | None
    slot_end: datetime | None
    part: str | None  # the reserved spare's part number
    part_note: str | None  # why none is reserved
    site: str


def ts(t: datetime) -> str:
    """RFC 3339 UTC to the minute, as messages show times."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _name(metric: str) -> str:
    human = SMART_NAMES.get(metric)
    return f"{metric} ({human})" if human else metric


def evidence(p: Prediction) -> list[str]:
    """One sentence per reading that rose: what, from what to what, over when."""
    first = p.evidence.get("attrs") if isinstance(p.evidence.get("attrs"), Mapping) else None
    last = p.last_evidence.get("attrs") if isinstance(p.last_evidence.get("attrs"),
                                                      Mapping) else None
    span = f"between {ts(p.detected_at)} and {ts(p.last_seen)}"
    if first or last:
        attrs = {**(first or {}), **(last or {})}
        return [f"{_name(k)} rose from {_fmt(v.get('baseline'))} to {_fmt(v.get('value'))} {span}"
                for k, v in sorted(attrs.items()) if isinstance(v, Mapping)]
    if "previous" in p.evidence:
        metric = next((k for k in p.evidence if k not in _SKIP | {"previous"}), "the reading")
        now = p.last_evidence.get(metric, p.evidence.get(metric))
        return [f"{_name(metric)} rose from {_fmt(p.evidence['previous'])} to {_fmt(now)} {span}"]
    shown = {k: v for k, v in {**p.evidence, **p.last_evidence}.items() if k not in _SKIP}
    facts = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(shown.items()))
    return [f"{p.prediction.replace('_', ' ')}: {facts or 'see the readings'} {span}"]


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def plan_line(plan: Plan) -> str:
    """When and with which part the replacement is planned."""
    when = (f"{ts(plan.slot_start)} to {ts(plan.slot_end)}, inside your maintenance window"
            if plan.slot_start and plan.slot_end else
            "as soon as a technician of the site is free (you have no maintenance window; "
            "add one on the status page to choose when)")
    part = (f"spare {plan.part} is reserved for it at {plan.site}" if plan.part
            else plan.part_note or "the part comes from the site's stock")
    return f"Planned replacement: {when}; {part}."


def prediction_message(p: Prediction, plan: Plan, customer: str) -> tuple[str, str]:
    """(subject, body) of the prediction's message to the customer and the account team."""
    subject = f"[Hourglass] Planned replacement: {p.kind} {p.component} on {p.host}"
    lines = "\n".join(f"- {line}" for line in evidence(p))
    body = (f"Customer {customer}: the {p.kind} {p.component} on {p.host} is likely to fail "
            f"({p.prediction.replace('_', ' ')}). No failure yet, so no clock runs.\n"
            f"Evidence:\n{lines}\n{plan_line(plan)}\n"
            f"Accept, move or decline it on the status page (planned work {plan.job}).")
    return subject, body


def step_message(step: str, job: int, host: str, component: str, actor: str,
                 slot_start: datetime | None, reason: str | None) -> tuple[str, str]:
    """(subject, body) of a customer's answer to a plan, for the account team and the site."""
    when = f" Slot: {ts(slot_start)}." if slot_start else ""
    why = f" Reason: {reason}." if reason else ""
    subject = f"[Hourglass] Planned work {job} {step} by the customer: {component} on {host}"
    body = f"Planned work {job} ({component} on {host}) was {step} by {actor}.{when}{why}"
    if step == "declined":
        body += " The reserved spare is released; the part stays until it fails or is asked for."
    return subject, body
