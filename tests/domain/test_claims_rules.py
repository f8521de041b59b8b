"""The claim state machine and the breach-review rules, table-driven with an injected clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.domain import claims, reviews
from dispatcher.domain.claims import Action, Claim, Item, Move, Refused
from schemas.states import ClaimState as S

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    """T0 plus some hours."""
    return T0 + timedelta(hours=hours)


DUE_LATER = (Item("replace the RAID controller", "t-maria", at(48)),)
DUE_PAST = (Item("replace the RAID controller", "t-maria", at(-1)),)
DONE_PAST = (Item("replace the RAID controller", "t-maria", at(-1), done_at=at(-2)),)
TWO = (Item("a", "t-maria", at(-1), done_at=at(-2)), Item("b", "t-maria", at(5)))

# (state, manager, items, action, item, expected: a state it moves to, or (status, words))
CASES: list[tuple[S, str | None, tuple[Item, ...], Action, int | None,
                  S | tuple[int, str]]] = [
    # assignment: any time before the end
    (S.INVESTIGATING, None, (), Action.ASSIGN, None, S.INVESTIGATING),
    (S.PLAN_REJECTED, "t-maria", DUE_LATER, Action.ASSIGN, None, S.PLAN_REJECTED),
    (S.NOTICE_GIVEN, "t-maria", DUE_LATER, Action.ASSIGN, None, (409, "nothing more")),
    (S.RESOLVED, "t-maria", DUE_LATER, Action.ASSIGN, None, (409, "nothing more")),
    # a plan needs an owner; a rejected plan may be followed by a better one
    (S.INVESTIGATING, None, (), Action.PLAN, None, (409, "assign a manager")),
    (S.INVESTIGATING, "t-maria", (), Action.PLAN, None, S.PLAN_PRESENTED),
    (S.PLAN_PRESENTED, "t-maria", DUE_LATER, Action.PLAN, None, S.PLAN_PRESENTED),
    (S.PLAN_REJECTED, "t-maria", DUE_LATER, Action.PLAN, None, S.PLAN_PRESENTED),
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.PLAN, None, (409, "accepted")),
    (S.EXITED, "t-maria", DUE_LATER, Action.PLAN, None, (409, "nothing more")),
    # the customer's answer, only to a presented plan
    (S.PLAN_PRESENTED, "t-maria", DUE_LATER, Action.ACCEPT, None, S.PLAN_ACCEPTED),
    (S.PLAN_PRESENTED, "t-maria", DUE_LATER, Action.REJECT, None, S.PLAN_REJECTED),
    (S.PLAN_PRESENTED, "t-maria", DONE_PAST, Action.ACCEPT, None, S.RESOLVED),
    (S.INVESTIGATING, "t-maria", (), Action.ACCEPT, None, (409, "no plan waiting")),
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.REJECT, None, (409, "no plan waiting")),
    # items done; the last one of an accepted plan resolves the claim
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.ITEM_DONE, 1, S.RESOLVED),
    (S.PLAN_ACCEPTED, "t-maria", DUE_PAST, Action.ITEM_DONE, 1, S.RESOLVED),
    (S.PLAN_ACCEPTED, "t-maria", TWO, Action.ITEM_DONE, 1, S.PLAN_ACCEPTED),
    (S.PLAN_ACCEPTED, "t-maria", TWO, Action.ITEM_DONE, 2, S.RESOLVED),
    (S.PLAN_PRESENTED, "t-maria", DUE_LATER, Action.ITEM_DONE, 1, S.PLAN_PRESENTED),
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.ITEM_DONE, 2, (404, "items 1 to 1")),
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.ITEM_DONE, 0, (404, "items 1 to 1")),
    (S.PLAN_REJECTED, "t-maria", DUE_LATER, Action.ITEM_DONE, 1, (409, "no live plan")),
    # notice: after a rejected plan, or a missed item; never before
    (S.PLAN_REJECTED, "t-maria", DUE_LATER, Action.NOTICE, None, S.NOTICE_GIVEN),
    (S.PLAN_ACCEPTED, "t-maria", DUE_PAST, Action.NOTICE, None, S.NOTICE_GIVEN),
    (S.PLAN_PRESENTED, "t-maria", DUE_PAST, Action.NOTICE, None, S.NOTICE_GIVEN),
    (S.PLAN_ACCEPTED, "t-maria", TWO, Action.NOTICE, None, (409, "next item is due")),
    (S.PLAN_ACCEPTED, "t-maria", DUE_LATER, Action.NOTICE, None, (409, "next item is due")),
    (S.INVESTIGATING, "t-maria", (), Action.NOTICE, None, (409, "no plan has been presented")),
    (S.INVESTIGATING, None, (), Action.NOTICE, None, (409, "no plan has been presented")),
    (S.RESOLVED, "t-maria", DONE_PAST, Action.NOTICE, None, (409, "carried out in full")),
    (S.NOTICE_GIVEN, "t-maria", DUE_PAST, Action.NOTICE, None, (409, "already given")),
    # the exit survey follows notice, once
    (S.NOTICE_GIVEN, "t-maria", DUE_PAST, Action.EXIT_SURVEY, None, S.EXITED),
    (S.EXITED, "t-maria", DUE_PAST, Action.EXIT_SURVEY, None, (409, "already answered")),
    (S.PLAN_REJECTED, "t-maria", DUE_LATER, Action.EXIT_SURVEY, None, (409, "follows notice")),
]


@pytest.mark.parametrize(("state", "manager", "items", "action", "item", "expected"), CASES,
                         ids=[f"{c[0]}-{c[3]}-{n}" for n, c in enumerate(CASES)])
def test_claim_rules(state: S, manager: str | None, items: tuple[Item, ...], action: Action,
                     item: int | None, expected: S | tuple[int, str]) -> None:
    got = claims.decide(Claim(state, manager, items), action, T0, item)
    if isinstance(expected, S):
        assert got == Move(expected)
    else:
        assert isinstance(got, Refused)
        assert got.status == expected[0]
        assert expected[1] in got.detail


@pytest.mark.parametrize(("due", "done", "now", "missed"), [
    (at(1), None, at(0), False),
    (at(1), None, at(1), True),  # due at 10:00 and not done at 10:00: missed
    (at(1), None, at(1) - timedelta(seconds=1), False),
    (at(1), at(0.5), at(3), False),
    (at(1), at(2), at(3), False),  # done late, but done: no longer a missed item
])
def test_an_item_is_missed_from_its_due_time_until_done(
        due: datetime, done: datetime | None, now: datetime, missed: bool) -> None:
    assert bool(claims.missed([Item("x", "t", due, done)], now)) is missed


def test_notice_takes_effect_thirty_days_later() -> None:
    assert claims.notice_effective(T0) == datetime(2026, 12, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("items", "words"), [
    ((), "at least one item"),
    ((Item("x", "t", T0),), "in the past"),
    ((Item("x", "t", at(1)), Item("y", "t", at(-1))), "[2]"),
    (tuple(Item("x", "t", at(1)) for _ in range(claims.MAX_ITEMS + 1)), "at most"),
])
def test_a_plan_must_be_followable(items: tuple[Item, ...], words: str) -> None:
    problem = claims.check_plan(items, T0)
    assert problem is not None
    assert words in problem


def test_a_good_plan_passes() -> None:
    assert claims.check_plan(DUE_LATER, T0) is None


@pytest.mark.parametrize(("deadline", "verified", "now", "breached"), [
    (at(1), at(0.5), at(5), False),
    (at(1), at(1), at(5), False),  # fixed exactly at the deadline keeps the promise
    (at(1), at(1) + timedelta(seconds=1), at(5), True),
    (at(1), None, at(0.9), False),
    (at(1), None, at(1), False),
    (at(1), None, at(1.01), True),  # still open past it
])
def test_breached(deadline: datetime, verified: datetime | None, now: datetime,
                  breached: bool) -> None:
    assert reviews.breached(deadline, verified, now) is breached


@pytest.mark.parametrize(("has_review", "now", "overdue"), [
    (False, at(1) + reviews.REVIEW_DUE - timedelta(seconds=1), False),
    (False, at(1) + reviews.REVIEW_DUE, True),
    (True, at(1) + reviews.REVIEW_DUE * 3, False),
])
def test_a_breach_review_is_overdue_after_its_grace(has_review: bool, now: datetime,
                                                     overdue: bool) -> None:
    assert reviews.review_overdue(at(1), at(2), has_review, now) is overdue


def test_a_kept_promise_never_owes_a_review() -> None:
    assert not reviews.review_overdue(at(1), at(0.5), False, at(500))


def test_sql_check_mirrors_the_claim_states() -> None:
    sql = (Path(__file__).parents[2] / "schemas/sql/010_reviews_claims.sql").read_text()
    m = re.search(r"state\s+text NOT NULL DEFAULT '\w+' CHECK \(state IN\s*\(([^)]*)\)\)", sql)
    assert m
    assert set(re.findall(r"'(\w+)'", m[1])) == {s.value for s in S}
