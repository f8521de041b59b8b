"""The promise decided once: is the fix proven, by when was it due, and what credit is owed.

Pure. The loop's verification (dispatcher.service.engine) and the timers' last check before they
act (dispatcher.service.timers: a fix proven before a deadline must not be escalated as a breach)
both ask ``settle``; nothing else decides it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dispatcher.domain import credit, sla, verify


@dataclass(frozen=True)
class Terms:
    """What the contract says about one incident."""

    sla_minutes: float
    monthly_fee: Decimal
    credit: credit.CreditPolicy


@dataclass(frozen=True)
class Settled:
    """A proven fix: the component that proves it, when, the deadline and the credit due."""

    proof: verify.Observation
    fixed_at: datetime
    deadline: datetime
    credit: credit.CreditDecision | None

    @property
    def late(self) -> bool:
        """Whether the fix came after the deadline."""
        return self.fixed_at > self.deadline


def settle(failed: verify.Failed, observations: Sequence[verify.Observation],
           pauses: Sequence[sla.Pause], terms: Terms) -> Settled | None:
    """The fix proven by telemetry, or None. The deadline moves by the paused time before
    the fix; the credit is the contract's for every started period past it."""
    proof = verify.proof(failed, observations)
    if proof is None or proof.status_ts is None:
        return None
    fixed = proof.status_ts
    due = sla.deadline(failed.detected_at, terms.sla_minutes, pauses, fixed)
    return Settled(proof, fixed, due, credit.compute(due, fixed, terms.monthly_fee, terms.credit))


def kept_by(failed: verify.Failed, observations: Sequence[verify.Observation],
            pauses: Sequence[sla.Pause], sla_minutes: float, due_at: datetime) -> bool:
    """Whether telemetry already proves a fix at or before ``due_at`` (a timer due then must
    not act on a promise already kept)."""
    done = settle(failed, observations, pauses, Terms(sla_minutes, Decimal(0),
                                                       credit.CreditPolicy(Decimal(0), 60.0,
                                                                           Decimal(0))))
    return done is not None and done.fixed_at <= due_at
