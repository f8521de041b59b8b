"""The claim state machine: what may happen to a customer's claim, and when. Pure.

A claim opens an investigation owned by a manager, who presents an action plan; the customer
accepts or rejects it. A rejected plan, or an item of the plan past its due time and not done,
lets the customer give notice without penalty; an exit survey follows. Who may call each
step (customer, manager) is the API's business; this module decides from state and `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.states import ClaimState

NOTICE_PERIOD = timedelta(days=30)  # the promise: 30 days' notice, without penalty
MAX_ITEMS = 50  # a plan longer than this is not a plan anyone will follow


class Action(StrEnum):
    """A step on a claim; each is also the kind of its claim event."""

    ASSIGN = "assigned"
    PLAN = "plan_presented"
    ACCEPT = "plan_accepted"
    REJECT = "plan_rejected"
    ITEM_DONE = "item_done"
    NOTICE = "notice_given"
    EXIT_SURVEY = "exit_survey"


@dataclass(frozen=True)
class Item:
    """One action of a plan: what, who, by when, and when it was done."""

    text: str
    owner: str
    due_at: datetime
    done_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """A claim as the rules need it: its state, owner and current plan."""

    state: ClaimState
    manager: str | None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Move:
    """An allowed step: the state it leads to."""

    to: ClaimState


@dataclass(frozen=True)
class Refused:
    """A step not allowed now: an HTTP status and what to do instead."""

    status: int
    detail: str


FINAL = frozenset({ClaimState.RESOLVED, ClaimState.EXITED})
_PLANNABLE = frozenset({ClaimState.INVESTIGATING, ClaimState.PLAN_PRESENTED,
                        ClaimState.PLAN_REJECTED})
_WITH_PLAN = frozenset({ClaimState.PLAN_PRESENTED, ClaimState.PLAN_ACCEPTED})


def missed(items: Sequence[Item], now: datetime) -> list[int]:
    """Numbers (1-based) of the items past their due time and not done."""
    return [n for n, i in enumerate(items, 1) if i.done_at is None and i.due_at <= now]


def notice_effective(now: datetime) -> datetime:
    """When notice given now takes effect."""
    return now + NOTICE_PERIOD


def check_plan(items: Sequence[Item], now: datetime) -> str | None:
    """What is wrong with a proposed plan, or None."""
    if not items:
        return "a plan needs at least one item (text, owner, due_at)"
    if len(items) > MAX_ITEMS:
        return f"a plan has at most {MAX_ITEMS} items"
    late = [n for n, i in enumerate(items, 1) if i.due_at <= now]
    if late:
        return f"item(s) {late} are due in the past: give each a due time after now"
    return None


def _notice(c: Claim, now: datetime) -> Move | Refused:
    if c.state is ClaimState.PLAN_REJECTED:
        return Move(ClaimState.NOTICE_GIVEN)
    if c.state in _WITH_PLAN and missed(c.items, now):
        return Move(ClaimState.NOTICE_GIVEN)
    if c.state in (ClaimState.NOTICE_GIVEN, ClaimState.EXITED):
        return Refused(409, "notice was already given on this claim")
    if c.state is ClaimState.RESOLVED:
        return Refused(409, "this claim's plan was carried out in full; raise a new claim if "
                            "support failed again")
    if c.state in _WITH_PLAN:
        due = min(i.due_at for i in c.items if i.done_at is None)
        return Refused(409, "notice without penalty opens when you reject the plan or an item "
                            f"of it is missed; the next item is due {due.isoformat()}")
    return Refused(409, "notice without penalty opens when you reject the manager's plan or "
                        "an item of it is missed; no plan has been presented yet")


def decide(c: Claim, action: Action, now: datetime, item: int | None = None) -> Move | Refused:
    """Whether `action` may happen to the claim at `now`, and the state it leads to."""
    if action is Action.NOTICE:
        return _notice(c, now)
    if action is Action.EXIT_SURVEY:
        if c.state is ClaimState.NOTICE_GIVEN:
            return Move(ClaimState.EXITED)
        if c.state is ClaimState.EXITED:
            return Refused(409, "the exit survey was already answered")
        return Refused(409, "the exit survey follows notice; no notice was given on this claim")
    if c.state in FINAL or c.state is ClaimState.NOTICE_GIVEN:
        return Refused(409, f"the claim is '{c.state}': nothing more can be done to it")
    if action is Action.ASSIGN:
        return Move(c.state)
    if action is Action.PLAN:
        if c.manager is None:
            return Refused(409, "assign a manager first (POST .../assign {manager})")
        if c.state not in _PLANNABLE:
            return Refused(409, "the customer accepted the current plan: mark its items done")
        return Move(ClaimState.PLAN_PRESENTED)
    if action in (Action.ACCEPT, Action.REJECT):
        if c.state is not ClaimState.PLAN_PRESENTED:
            return Refused(409, f"the claim is '{c.state}': there is no plan waiting for your "
                                "answer")
        if action is Action.REJECT:
            return Move(ClaimState.PLAN_REJECTED)
        return Move(_resolved_if_done(ClaimState.PLAN_ACCEPTED, c.items))
    return _item_done(c, now, item)


def _item_done(c: Claim, now: datetime, item: int | None) -> Move | Refused:
    if c.state not in _WITH_PLAN:
        return Refused(409, f"the claim is '{c.state}': there is no live plan")
    if item is None or not 1 <= item <= len(c.items):
        return Refused(404, f"the plan has items 1 to {len(c.items)}")
    items = list(c.items)
    if items[item - 1].done_at is None:
        items[item - 1] = replace(items[item - 1], done_at=now)
    return Move(_resolved_if_done(c.state, items))


def _resolved_if_done(state: ClaimState, items: Sequence[Item]) -> ClaimState:
    """An accepted plan whose every item is done resolves the claim."""
    if state is ClaimState.PLAN_ACCEPTED and all(i.done_at is not None for i in items):
        return ClaimState.RESOLVED
    return state
