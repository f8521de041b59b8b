"""The credit: a share of the monthly fee per started period past the deadline, capped. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal


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
