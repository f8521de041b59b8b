"""Who is told what: timeline events and low-stock alerts become messages. Pure.

The rules (issue 6, "Notifications"): dispatched or reassigned → the technician; escalated →
the manager or executive it names (breach: the executive on duty); a verification timeout's
reopen → the manager; an incident opened, verified or credited on a customer's hosts → the
customer's account team; low spares → the site manager. Also the retry schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Incident:
    """The incident an event belongs to, as a message needs to describe it."""

    id: int
    host: str
    site: str
    customer: str
    component: str
    failure: str
    deadline: datetime


@dataclass(frozen=True)
class Event:
    """One timeline entry."""

    id: int
    at: datetime
    actor: str
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class AccountTeam:
    """A customer's account manager and team members (ids with contacts), and the customer's
    own contacts (the ones it manages on /status), told of the same events."""

    manager: str | None
    members: tuple[str, ...] = ()
    customer: tuple[str, ...] = ()

    def everyone(self) -> tuple[str, ...]:
        """The manager then the members, each once."""
        return _unique([self.manager, *self.members])


@dataclass(frozen=True)
class Message:
    """One message to one person."""

    recipient: str
    reason: str
    subject: str
    body: str


#: Timeline kinds the account team hears of, and the reason slug each becomes.
ACCOUNT_EVENTS = {"detected": "incident_opened", "verified": "incident_verified",
                  "credit_issued": "credit_issued"}


def _unique(ids: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for i in ids:
        if i:
            seen.setdefault(i, None)
    return tuple(seen)


def _hm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _what(i: Incident) -> str:
    return f"{i.component} on {i.host} ({i.failure}) at {i.site}"


def _line(e: Event, i: Incident) -> tuple[str, str, str | None] | None:
    """(reason, sentence, person) for a person-directed event; None for others."""
    d = e.detail
    if e.kind == "dispatched":
        spare = f" Spare reserved: {d['spare']}." if d.get("spare") else ""
        return "dispatched", f"You are assigned: {_what(i)}.{spare}", d.get("technician")
    if e.kind == "reassigned":
        return "dispatched", (f"You are assigned (transferred from {d.get('from')}): "
                              f"{_what(i)}."), d.get("to")
    if e.kind == "escalated":
        reason = "breach" if d.get("step") == "breach" else "escalated"
        return reason, f"Escalated to you: {_what(i)}. {d.get('reason', '')}".strip(), d.get("to")
    if e.kind == "reopened":
        return "verify_timeout", (f"Reopened: {_what(i)}. "
                                  f"{d.get('reason', '')}").strip(), d.get("to")
    return None


def messages(e: Event, i: Incident, team: AccountTeam) -> tuple[Message, ...]:
    """Every message one timeline event causes, one per person at most."""
    out: list[Message] = []
    subject_tail = f"incident {i.id}: {i.component} on {i.host}"
    line = _line(e, i)
    if line is not None and line[2]:
        reason, sentence, person = line
        body = f"{sentence}\nDeadline: {_hm(i.deadline)}\nAt: {_hm(e.at)}\nIncident: {i.id}"
        out.append(Message(str(person), reason, f"[Hourglass] {reason}: {subject_tail}", body))
    account_reason = ACCOUNT_EVENTS.get(e.kind)
    if account_reason is not None:
        extra = ""
        if e.kind == "credit_issued":
            extra = (f"\nCredit: {e.detail.get('amount')} {e.detail.get('currency')}"
                     f" ({e.detail.get('percent')} % of the monthly fee)")
        body = (f"Customer {i.customer}: {_what(i)} — {account_reason.replace('_', ' ')}."
                f"\nDeadline: {_hm(i.deadline)}\nAt: {_hm(e.at)}\nIncident: {i.id}{extra}")
        told = {m.recipient for m in out}
        out.extend(Message(p, account_reason, f"[Hourglass] {account_reason}: {subject_tail}",
                           body) for p in team.everyone() if p not in told)
        out.extend(Message(p, account_reason, f"[Hourglass] {account_reason}: {subject_tail}",
                           body) for p in _unique(team.customer))
    return tuple(out)


@dataclass(frozen=True)
class LowStock:
    """A site's part whose available count fell to its low-stock threshold."""

    id: int
    site: str
    part: str
    kind: str
    available: int
    threshold: int
    at: datetime


def low_stock(a: LowStock, site_manager: str | None) -> tuple[Message, ...]:
    """Tell the site manager a part runs low; nothing when the site has no manager."""
    if not site_manager:
        return ()
    return (Message(site_manager, "low_spares",
                    f"[Hourglass] low spares at {a.site}: {a.part}",
                    f"{a.part} ({a.kind}) at {a.site}: {a.available} available, threshold "
                    f"{a.threshold}.\nAt: {_hm(a.at)}"),)


def backoff_s(attempt: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds before retry after failed `attempt` (1-based): doubling, capped, jittered.

    `jitter` in [0, 1) picks a point in the upper half of the step ("equal jitter"), so
    retries from many rows spread out but never come sooner than half the step.
    """
    step = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return step / 2 + step / 2 * jitter
