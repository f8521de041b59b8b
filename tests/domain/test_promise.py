"""dispatcher.domain.promise: the fix, its deadline and the credit, decided in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dispatcher.domain.credit import CreditPolicy
from dispatcher.domain.promise import Terms, kept_by, settle
from dispatcher.domain.sla import Pause
from dispatcher.domain.verify import Failed, Observation

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DISK = Failed("disk:OLD", "disk", "sda", "OLD", T0)
TERMS = Terms(60, Decimal("450.00"), CreditPolicy())


def new_disk(minutes: float) -> Observation:
    return Observation("disk:NEW", "disk", "sda", "NEW", "ok", T0 + timedelta(minutes=minutes))


def test_a_fix_in_time_owes_nothing() -> None:
    done = settle(DISK, [new_disk(50)], [], TERMS)
    assert done is not None
    assert (done.fixed_at, done.deadline, done.credit, done.late) == (
        T0 + timedelta(minutes=50), T0 + timedelta(minutes=60), None, False)


def test_a_late_fix_owes_a_started_hour_and_pauses_move_the_deadline() -> None:
    late = settle(DISK, [new_disk(61)], [], TERMS)
    assert late is not None
    assert late.late
    assert late.credit is not None
    assert late.credit.amount == Decimal("22.50")  # 5 % of 450 for one started hour
    paused = settle(DISK, [new_disk(61)], [Pause(T0 + timedelta(minutes=10),
                                                 T0 + timedelta(minutes=20))], TERMS)
    assert paused is not None
    assert paused.deadline == T0 + timedelta(minutes=70)
    assert paused.credit is None


def test_the_same_disk_healthy_again_proves_nothing() -> None:
    same = Observation("disk:OLD", "disk", "sda", "OLD", "ok", T0 + timedelta(minutes=5))
    assert settle(DISK, [same], [], TERMS) is None
    assert not kept_by(DISK, [same], [], 60, T0 + timedelta(minutes=60))


def test_kept_by_a_due_time() -> None:
    assert kept_by(DISK, [new_disk(59)], [], 60, T0 + timedelta(minutes=60))
    assert not kept_by(DISK, [new_disk(61)], [], 60, T0 + timedelta(minutes=60))
