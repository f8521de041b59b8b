"""When an incident broke the promise, and when its review is overdue. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

#: A breach review is owed to the customer within two days of the deadline it missed: long
#: enough to find the cause, short enough that the customer still remembers the outage.
REVIEW_DUE = timedelta(days=2)


def breached(deadline: datetime, verified_at: datetime | None, now: datetime) -> bool:
    """Verified after its deadline, or still not verified past it."""
    return (verified_at if verified_at is not None else now) > deadline


def review_overdue(deadline: datetime, verified_at: datetime | None, has_review: bool,
                   now: datetime, due: timedelta = REVIEW_DUE) -> bool:
    """A breached incident still without a review `due` after its deadline."""
    return (not has_review and breached(deadline, verified_at, now)
            and now >= deadline + due)
