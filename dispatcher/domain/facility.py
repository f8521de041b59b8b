"""Facility incidents, the dispatcher's side: who is told, and each host's credit. Pure.

A rack, PDU or switch that went down is a site-level emergency: the site manager and the
account team of every customer with a host in it are told at once, the executive on duty at
the deadline. When it resolves, each linked host's customer is credited for that host by
the facility's own policy, counting until the host came back (or until the resolution, for
a host that never did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from dispatcher.domain import credit
from dispatcher.domain.notify import AccountTeam, Message


@dataclass(frozen=True)
class Facility:
    """A facility incident as recorded by the collector."""

    id: int
    site: str
    site_name: str
    rack: str | None  # the rack of most linked hosts (None: a PDU or switch outside racks)
    cause: str  # power | network
    detected_at: datetime
    deadline: datetime
    resolved_at: datetime | None
    policy: credit.CreditPolicy
    scope: str = "rack"  # rack | pdu | switch (schemas/states.py FacilityScope)
    scope_id: str | None = None  # the PDU's or switch's id; the rack's when None


@dataclass(frozen=True)
class LinkedHost:
    """One host the facility took down, with its customer and fee."""

    host: str
    customer: str
    monthly_fee: Decimal
    currency: str
    back_at: datetime | None


def restored_at(f: Facility, h: LinkedHost) -> datetime:
    """The time that counts for a host: when it came back, else when the facility resolved."""
    if h.back_at is not None:
        return h.back_at
    if f.resolved_at is None:
        raise ValueError(f"facility {f.id} is not resolved: host {h.host} has no end yet")
    return f.resolved_at


def host_credit(f: Facility, h: LinkedHost) -> credit.CreditDecision | None:
    """The host's credit by the facility policy, or None when it was back in time."""
    return credit.compute(f.deadline, restored_at(f, h), h.monthly_fee, f.policy)


def _hm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


#: How a message names what went down, by scope.
_SCOPE_NAME = {"rack": "Rack", "pdu": "PDU", "switch": "Switch"}


def _what(f: Facility) -> str:
    if f.scope == "rack":
        lost = "lost power" if f.cause == "power" else "lost its network"
    else:
        lost = "lost power" if f.cause == "power" else "lost network"
    name = f.scope_id if f.scope != "rack" and f.scope_id else f.rack
    return (f"{_SCOPE_NAME.get(f.scope, 'Rack')} {name} in {f.site_name} {lost}"
            f" at {_hm(f.detected_at)}")


def opened(f: Facility, site_manager: str | None,
           teams: Mapping[str, tuple[AccountTeam, int]]) -> list[Message]:
    """The site manager at once, and each affected customer's account team (host count)."""
    out: list[Message] = []
    # Told only after it was over (every dispatcher was down): say so, not "we are on it".
    after = "" if f.resolved_at is None else f" It was resolved at {_hm(f.resolved_at)}."
    if site_manager:
        total = sum(n for _, n in teams.values())
        out.append(Message(
            site_manager, "facility_opened", f"[facility {f.id}] {_what(f)}",
            f"{_what(f)}: {total} hosts of {len(teams)} customers are down. Site-level "
            f"emergency; deadline {_hm(f.deadline)}.{after}"))
    told = {site_manager}
    for customer in sorted(teams):
        team, n = teams[customer]
        for person in team.everyone():
            if person in told:
                continue  # one message per person, however many customers they serve
            told.add(person)
            mine = sorted(c for c, (t, _) in teams.items() if person in t.everyone())
            hosts = sum(teams[c][1] for c in mine)
            out.append(Message(
                person, "facility_opened", f"[facility {f.id}] {_what(f)}",
                f"{_what(f)}: {hosts} hosts of your customers ({', '.join(mine)}) are "
                f"affected. We are on it; deadline {_hm(f.deadline)}.{after}"))
    return out


def breach(f: Facility, executive: str, now: datetime) -> Message:
    """The facility's deadline passed before it resolved: the executive on duty."""
    state = "still open" if f.resolved_at is None or f.resolved_at > now \
        else f"resolved late at {_hm(f.resolved_at)}"
    return Message(executive, "facility_breach", f"[facility {f.id}] deadline missed",
                   f"{_what(f)}; deadline {_hm(f.deadline)} passed, {state}.")


def credits(f: Facility, hosts: Sequence[LinkedHost]
            ) -> list[tuple[LinkedHost, datetime, credit.CreditDecision]]:
    """Each late host with its restored time and credit (hosts back in time owe nothing)."""
    out = []
    for h in hosts:
        d = host_credit(f, h)
        if d is not None:
            out.append((h, restored_at(f, h), d))
    return out


def credited(f: Facility, teams: Mapping[str, AccountTeam],
             issued: Sequence[tuple[LinkedHost, credit.CreditDecision]]) -> list[Message]:
    """Each account person once: the credits their customers got, per currency."""
    by_person: dict[str, dict[str, list[tuple[LinkedHost, credit.CreditDecision]]]] = {}
    for h, d in issued:
        for person in teams[h.customer].everyone():
            by_person.setdefault(person, {}).setdefault(h.customer, []).append((h, d))
    out = []
    for person, customers in by_person.items():
        lines = []
        for customer in sorted(customers):
            totals: dict[str, Decimal] = {}
            for h, d in customers[customer]:
                totals[h.currency] = totals.get(h.currency, Decimal(0)) + d.amount
            money = ", ".join(f"{v} {k}" for k, v in sorted(totals.items()))
            lines.append(f"{customer}: {len(customers[customer])} hosts, {money}")
        out.append(Message(
            person, "facility_credited", f"[facility {f.id}] credits issued",
            f"{_what(f)}; deadline {_hm(f.deadline)} missed. Credited automatically: "
            + "; ".join(lines) + "."))
    return out
