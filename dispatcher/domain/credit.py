"""The credit: a share of the monthly fee per started period past the deadline, capped. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


@dataclass(frozen=True)
class CreditPolicy:
    """Published terms: `percent` of the fee per started `period_minutes`, at most `cap_percent`."""

    percent: Decimal = Decimal(5)
    period_minutes: float = 60.0
    cap_percent: Decimal = Decimal(100)


@dataclass(frozen=True)
class CreditDecision:
    """What the customer is owed for one late fix."""

    amount: Decimal
    percent: Decimal
    periods: int
    late_seconds: float


CENT = Decimal("0.01")


def compute(deadline: datetime, fixed_at: datetime, monthly_fee: Decimal,
            policy: CreditPolicy) -> CreditDecision | None:
    """The credit for a fix verified at `fixed_at`, or None when it beat the deadline."""
    late = (fixed_at - deadline).total_seconds()
    if late <= 0:
        return None
    periods = math.ceil(late / (policy.period_minutes * 60))
    percent = min(policy.percent * periods, policy.cap_percent)
    amount = (monthly_fee * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return CreditDecision(amount, percent, periods, late)


class FailureClass(StrEnum):
    """What kind of failure broke the promise; each class has its own credit period."""

    HARDWARE = "hardware"
    POWER = "power"
    NETWORK = "network"


@dataclass(frozen=True)
class ClassPolicy:
    """Credit period per failure class, and which failure slugs are power or network.

    Defaults are the published terms: 60 min for hardware, 30 for power and network (a
    facility outage takes every host of a rack, so it is credited twice as fast). Any slug
    not listed is hardware. Slugs are docs/signals.md's.
    """

    hardware_minutes: float = 60.0
    power_minutes: float = 30.0
    network_minutes: float = 30.0
    # A failed PSU is a part to replace (hardware); these are the host or rack losing power.
    power_failures: frozenset[str] = frozenset({"host_down", "power"})
    network_failures: frozenset[str] = frozenset({"nic_carrier_lost", "network"})

    def failure_class(self, failure: str) -> FailureClass:
        """The class of a failure slug."""
        if failure in self.power_failures:
            return FailureClass.POWER
        if failure in self.network_failures:
            return FailureClass.NETWORK
        return FailureClass.HARDWARE

    def period_minutes(self, failure: str) -> float:
        """The credit period of a failure slug's class."""
        return {FailureClass.HARDWARE: self.hardware_minutes,
                FailureClass.POWER: self.power_minutes,
                FailureClass.NETWORK: self.network_minutes}[self.failure_class(failure)]


def policy_for(failure: str, classes: ClassPolicy, percent: Decimal,
               contract_period_minutes: float | None, cap_percent: Decimal) -> CreditPolicy:
    """The terms for one incident: a contract's own period wins, else its failure class's."""
    period = contract_period_minutes if contract_period_minutes is not None \
        else classes.period_minutes(failure)
    return CreditPolicy(percent, period, cap_percent)
