"""Credit period by failure class, table-driven at every boundary, with recorded times only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dispatcher.domain import credit

DEADLINE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FEE = Decimal("450.00")
CLASSES = credit.ClassPolicy()
PCT, CAP = Decimal(5), Decimal(100)


def late(minutes: int, seconds: int = 0) -> datetime:
    """The fix time this far past the deadline."""
    return DEADLINE + timedelta(minutes=minutes, seconds=seconds)


@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        ("smart_failed", credit.FailureClass.HARDWARE),
        ("ecc_uncorrectable", credit.FailureClass.HARDWARE),
        ("psu_lost", credit.FailureClass.HARDWARE),  # a PSU is a part one replaces
        ("host_down", credit.FailureClass.POWER),
        ("power", credit.FailureClass.POWER),  # facility incident: a rack lost power
        ("nic_carrier_lost", credit.FailureClass.NETWORK),
        ("network", credit.FailureClass.NETWORK),  # facility incident: a switch is down
    ],
)
def test_failure_slugs_map_to_classes(failure: str, cls: credit.FailureClass) -> None:
    assert CLASSES.failure_class(failure) == cls


@pytest.mark.parametrize(
    ("failure", "fixed", "periods", "percent", "amount"),
    [
        # hardware: 60-minute periods
        ("smart_failed", late(0), None, None, None),  # on the deadline: no credit
        ("smart_failed", late(0, 1), 1, "5", "22.50"),
        ("smart_failed", late(59, 59), 1, "5", "22.50"),
        ("smart_failed", late(60), 1, "5", "22.50"),
        ("smart_failed", late(60, 1), 2, "10", "45.00"),
        ("smart_failed", late(120, 1), 3, "15", "67.50"),
        ("smart_failed", late(20 * 60), 20, "100", "450.00"),  # exactly at the cap
        ("smart_failed", late(40 * 60), 40, "100", "450.00"),  # past it: capped
        # power and network: 30-minute periods
        ("host_down", late(29, 59), 1, "5", "22.50"),
        ("host_down", late(30), 1, "5", "22.50"),
        ("host_down", late(30, 1), 2, "10", "45.00"),
        ("power", late(60, 1), 3, "15", "67.50"),
        ("nic_carrier_lost", late(29, 59), 1, "5", "22.50"),
        ("nic_carrier_lost", late(30, 1), 2, "10", "45.00"),
        ("network", late(10 * 60), 20, "100", "450.00"),  # the cap comes twice as fast
    ],
)
def test_credit_by_class_at_the_boundaries(failure: str, fixed: datetime, periods: int | None,
                                           percent: str | None, amount: str | None) -> None:
    terms = credit.policy_for(failure, CLASSES, PCT, None, CAP)
    got = credit.compute(DEADLINE, fixed, FEE, terms)
    if periods is None:
        assert got is None
        return
    assert got is not None
    assert (got.periods, got.percent, got.amount) == (periods, Decimal(percent or 0),
                                                     Decimal(amount or 0))
    assert got.late_seconds == (fixed - DEADLINE).total_seconds()


@pytest.mark.parametrize(
    ("failure", "contract_period", "fixed", "periods"),
    [
        ("host_down", 60.0, late(30, 1), 1),  # the contract's 60 min beats power's 30
        ("smart_failed", 15.0, late(15, 1), 2),  # a stricter contract for hardware
        ("smart_failed", None, late(15, 1), 1),  # no contract period: the class's 60
    ],
)
def test_contract_period_overrides_the_class(failure: str, contract_period: float | None,
                                             fixed: datetime, periods: int) -> None:
    terms = credit.policy_for(failure, CLASSES, PCT, contract_period, CAP)
    got = credit.compute(DEADLINE, fixed, FEE, terms)
    assert got is not None
    assert got.periods == periods


def test_classes_are_configuration() -> None:
    """Another operator's map: power credited every 20 min, a custom slug as network."""
    classes = credit.ClassPolicy(power_minutes=20, network_failures=frozenset({"uplink_down"}))
    assert classes.period_minutes("host_down") == 20
    assert classes.failure_class("uplink_down") == credit.FailureClass.NETWORK
    assert classes.failure_class("nic_carrier_lost") == credit.FailureClass.HARDWARE
