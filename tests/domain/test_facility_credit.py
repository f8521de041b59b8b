"""Facility credits per host and who is told, on the pure rules (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dispatcher.domain import credit
from dispatcher.domain import facility as fac
from dispatcher.domain.notify import AccountTeam

T0 = datetime(2026, 11, 23, 14, 2, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=1)
POLICY = credit.CreditPolicy(Decimal(5), 30.0, Decimal(100))  # the facility default


def facility(resolved: datetime | None, policy: credit.CreditPolicy = POLICY) -> fac.Facility:
    """Rack r12 in Ashburn 1 lost power at T0."""
    return fac.Facility(7, "iad1", "Ashburn 1", "r12", "power", T0, DEADLINE, resolved, policy)


def host(back: datetime | None, fee: str = "450.00") -> fac.LinkedHost:
    """One acme host at the given fee."""
    return fac.LinkedHost("web-01", "acme", Decimal(fee), "USD", back)


@pytest.mark.parametrize(("late", "periods", "percent", "amount"), [
    (timedelta(seconds=-1), None, None, None),              # back a second early: nothing
    (timedelta(0), None, None, None),                       # back at the deadline: nothing
    (timedelta(seconds=1), 1, "5", "22.50"),
    (timedelta(minutes=29, seconds=59), 1, "5", "22.50"),
    (timedelta(minutes=30), 1, "5", "22.50"),               # a full period is one period
    (timedelta(minutes=30, seconds=1), 2, "10", "45.00"),   # a started second period
    (timedelta(hours=9, minutes=59, seconds=59), 20, "100", "450.00"),  # exactly the cap
    (timedelta(hours=10, seconds=1), 21, "100", "450.00"),  # capped at 100 %
])
def test_credit_per_host_at_the_boundaries(late: timedelta, periods: int | None,
                                           percent: str | None, amount: str | None) -> None:
    d = fac.host_credit(facility(DEADLINE + timedelta(hours=20)), host(DEADLINE + late))
    if periods is None:
        assert d is None
        return
    assert d is not None
    assert (d.periods, d.percent, d.amount) == (periods, Decimal(percent or 0),
                                                Decimal(amount or 0))
    assert d.late_seconds == late.total_seconds()


def test_a_host_never_back_counts_until_the_resolution() -> None:
    f = facility(DEADLINE + timedelta(minutes=45))
    h = host(None)
    assert fac.restored_at(f, h) == DEADLINE + timedelta(minutes=45)
    d = fac.host_credit(f, h)
    assert d is not None
    assert (d.periods, d.amount) == (2, Decimal("45.00"))


def test_a_host_back_counts_its_own_time_not_the_resolution() -> None:
    f = facility(DEADLINE + timedelta(hours=3))
    assert fac.host_credit(f, host(DEADLINE - timedelta(minutes=1))) is None
    d = fac.host_credit(f, host(DEADLINE + timedelta(minutes=10), fee="99.99"))
    assert d is not None
    assert d.amount == Decimal("5.00")


def test_an_unresolved_facility_has_no_end_for_a_silent_host() -> None:
    with pytest.raises(ValueError, match="not resolved"):
        fac.host_credit(facility(None), host(None))


def test_the_facility_policy_is_its_own_not_hardcoded() -> None:
    f = facility(DEADLINE + timedelta(minutes=31),
                 credit.CreditPolicy(Decimal(10), 15.0, Decimal(25)))
    d = fac.host_credit(f, host(None, fee="100.00"))
    assert d is not None
    assert (d.periods, d.percent, d.amount) == (3, Decimal(25),
                                                                  Decimal("25.00"))


def test_credits_lists_only_late_hosts_with_their_times() -> None:
    f = facility(DEADLINE + timedelta(minutes=40))
    hosts = [fac.LinkedHost("a", "acme", Decimal(100), "USD", DEADLINE - timedelta(minutes=5)),
             fac.LinkedHost("b", "acme", Decimal(100), "USD", DEADLINE + timedelta(minutes=5)),
             fac.LinkedHost("c", "globex", Decimal(200), "EUR", None)]
    out = fac.credits(f, hosts)
    assert [(h.host, at, d.amount) for h, at, d in out] == [
        ("b", DEADLINE + timedelta(minutes=5), Decimal("5.00")),
        ("c", DEADLINE + timedelta(minutes=40), Decimal("20.00"))]


def test_opened_tells_the_manager_and_each_account_person_once() -> None:
    teams = {"acme": (AccountTeam("am-lee", ("am-kim",)), 30),
             "globex": (AccountTeam("am-lee", ("am-zoe",)), 10)}
    msgs = fac.opened(facility(None), "t-maria", teams)
    assert [m.recipient for m in msgs] == ["t-maria", "am-lee", "am-kim", "am-zoe"]
    assert all(m.reason == "facility_opened" for m in msgs)
    assert "Rack r12 in Ashburn 1 lost power at 2026-11-23 14:02:00Z" in msgs[0].body
    assert "40 hosts of 2 customers" in msgs[0].body
    assert "deadline 2026-11-23 15:02:00Z" in msgs[0].body
    assert "40 hosts of your customers (acme, globex)" in msgs[1].body
    assert "30 hosts of your customers (acme)" in msgs[2].body


def test_opened_without_a_site_manager_still_tells_the_account_team() -> None:
    msgs = fac.opened(facility(None), None, {"acme": (AccountTeam("am-lee"), 3)})
    assert [m.recipient for m in msgs] == ["am-lee"]


def test_breach_names_the_deadline_and_whether_it_is_still_open() -> None:
    m = fac.breach(facility(None), "t-eve", DEADLINE + timedelta(seconds=1))
    assert (m.recipient, m.reason) == ("t-eve", "facility_breach")
    assert "deadline 2026-11-23 15:02:00Z passed, still open" in m.body
    late = fac.breach(facility(DEADLINE + timedelta(minutes=5)), "t-eve",
                      DEADLINE + timedelta(minutes=6))
    assert "resolved late at 2026-11-23 15:07:00Z" in late.body


def test_credited_tells_each_account_person_once_with_totals_per_currency() -> None:
    f = facility(DEADLINE + timedelta(minutes=40))
    d5 = credit.CreditDecision(Decimal("22.50"), Decimal(5), 1, 60.0)
    d10 = credit.CreditDecision(Decimal("10.00"), Decimal(10), 2, 1900.0)
    issued = [(fac.LinkedHost("a", "acme", Decimal(450), "USD", None), d5),
              (fac.LinkedHost("b", "acme", Decimal(450), "USD", None), d5),
              (fac.LinkedHost("c", "globex", Decimal(100), "EUR", None), d10)]
    teams = {"acme": AccountTeam("am-lee", ("am-kim",)), "globex": AccountTeam("am-lee")}
    msgs = {m.recipient: m for m in fac.credited(f, teams, issued)}
    assert sorted(msgs) == ["am-kim", "am-lee"]
    assert "acme: 2 hosts, 45.00 USD; globex: 1 hosts, 10.00 EUR." in msgs["am-lee"].body
    assert msgs["am-kim"].body.endswith("acme: 2 hosts, 45.00 USD.")
    assert msgs["am-kim"].reason == "facility_credited"
