"""Table-driven tests of the SLA clock and the credit, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dispatcher.domain import credit, sla

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("sla_minutes", "pauses", "now", "deadline_min"),
    [
        (60, [], at(10), 60),
        (0.05, [], at(1), 0.05),
        (60, [sla.Pause(at(10), at(25))], at(30), 75),  # a closed pause shifts by 15
        (60, [sla.Pause(at(10), None)], at(30), 80),  # an open pause counts up to now
        (60, [sla.Pause(at(10), at(20)), sla.Pause(at(40), at(45))], at(50), 75),
        (60, [sla.Pause(at(10), at(20))], at(5), 60),  # a pause in the future: no shift yet
    ],
)
def test_deadline_shifts_by_exactly_the_paused_time(
    sla_minutes: float, pauses: list[sla.Pause], now: datetime, deadline_min: float
) -> None:
    assert sla.deadline(T0, sla_minutes, pauses, now) == at(deadline_min)


@pytest.mark.parametrize(
    ("fixed", "now", "elapsed_min", "breached"),
    [
        (None, at(30), 30, False),
        (None, at(61), 61, True),
        (at(59), at(200), 59, False),  # the clock stops at the verified fix
        (at(60), at(200), 60, False),  # exactly at the deadline is on time
        (at(75), at(200), 75, True),
    ],
)
def test_status(fixed: datetime | None, now: datetime, elapsed_min: float, breached: bool) -> None:
    s = sla.status(T0, 60, [], fixed, now)
    assert s.elapsed == timedelta(minutes=elapsed_min)
    assert s.breached is breached
    assert s.deadline == at(60)


POLICY = credit.CreditPolicy(Decimal(5), 60, Decimal(100))


@pytest.mark.parametrize(
    ("fixed_min", "fee", "policy", "amount", "percent", "periods"),
    [
        (59, "450.00", POLICY, None, None, None),  # on time: nothing
        (60, "450.00", POLICY, None, None, None),  # at the deadline: nothing
        (60 + 1 / 60, "450.00", POLICY, "22.50", "5", 1),  # one second late: one started hour
        (120, "450.00", POLICY, "22.50", "5", 1),  # exactly one hour late
        (121, "450.00", POLICY, "45.00", "10", 2),
        (60 + 25 * 60, "450.00", POLICY, "450.00", "100", 25),  # 25 hours: capped at 100 %
        (61, "333.33", POLICY, "16.67", "5", 1),  # rounded half up to the cent
        (61, "300.00", credit.CreditPolicy(Decimal(5), 30, Decimal(50)), "15.00", "5", 1),
        (95, "300.00", credit.CreditPolicy(Decimal(5), 30, Decimal(50)), "30.00", "10", 2),
        (60 + 24 * 60, "300.00", credit.CreditPolicy(Decimal(5), 30, Decimal(50)), "150.00",
         "50", 48),
    ],
)
def test_credit_per_started_period_capped(
    fixed_min: float, fee: str, policy: credit.CreditPolicy, amount: str | None,
    percent: str | None, periods: int | None,
) -> None:
    got = credit.compute(at(60), at(fixed_min), Decimal(fee), policy)
    if amount is None:
        assert got is None
    else:
        assert got is not None
        assert (got.amount, got.percent, got.periods) == (Decimal(amount), Decimal(percent),
                                                          periods)


def hms(h: int, m: int, s: int) -> datetime:
    return T0 + timedelta(hours=h, minutes=m, seconds=s)


@pytest.mark.parametrize(
    ("fixed", "pauses", "amount", "percent"),
    [
        (hms(0, 59, 59), [], None, None),  # 59:59 after detection: on time
        (hms(1, 0, 0), [], None, None),  # 60:00: exactly the deadline is on time
        (hms(1, 0, 1), [], "22.50", "5"),  # 60:01: one started hour
        (hms(2, 0, 0), [], "22.50", "5"),  # 2 h 00:00: still the first hour
        (hms(2, 0, 1), [], "45.00", "10"),  # 2 h 00:01: the second hour has started
        (hms(20, 0, 1), [], "450.00", "100"),  # 19 h 00:01 late: 20 hours, exactly the cap
        (hms(21, 0, 1), [], "450.00", "100"),  # 21 started hours would be 105 %: capped
        # A 10-minute pause the policy excludes: the deadline is 70:00, so 70:00 is on time ...
        (hms(1, 10, 0), [sla.Pause(hms(0, 20, 0), hms(0, 30, 0))], None, None),
        # ... and 70:01 is the first started hour.
        (hms(1, 10, 1), [sla.Pause(hms(0, 20, 0), hms(0, 30, 0))], "22.50", "5"),
    ],
)
def test_credit_at_every_boundary(fixed: datetime, pauses: list[sla.Pause], amount: str | None,
                                  percent: str | None) -> None:
    due = sla.status(T0, 60, pauses, fixed, fixed).deadline
    got = credit.compute(due, fixed, Decimal("450.00"), POLICY)
    if amount is None:
        assert got is None
    else:
        assert got is not None
        assert (got.amount, got.percent) == (Decimal(amount), Decimal(percent))
