"""How the promise went, as managers read it: the figures' shapes and their arithmetic. Pure.

The database computes the medians and p90s (percentile_cont, dispatcher/store/figures.py);
this module says which periods there are, fills the days nothing was fixed, turns counts into
the kept share, and writes the CSV. Values and `now` in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

#: The periods managers compare: the last week and the last month.
PERIODS = (7, 30)
DAILY_DAYS = 30  # the promises-kept-per-day chart
MEASURES = ("ack", "arrive", "fix")  # time to acknowledge, to arrive, to the verified fix
SCOPES = ("overall", "site", "technician")


@dataclass(frozen=True)
class Spread:
    """One measure over one group and period: how many, the median and the p90 (seconds)."""

    n: int = 0
    p50: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Row:
    """The figures of one group (the whole scope, a site or a technician) over one period."""

    scope: str
    key: str | None
    period_days: int
    fixed: int
    kept: int
    measures: Mapping[str, Spread] = field(default_factory=dict)
    credits: int = 0  # issued this calendar month (UTC), whatever the period
    credit_amounts: Mapping[str, str] = field(default_factory=dict)  # currency -> "12.50"

    @property
    def kept_share(self) -> float | None:
        """The share of fixes within the promise; None when nothing was fixed."""
        return share(self.kept, self.fixed)


@dataclass(frozen=True)
class Day:
    """Fixes verified on one UTC day, and how many of them kept the promise."""

    day: date
    fixed: int
    kept: int


def share(kept: int, fixed: int) -> float | None:
    """kept / fixed to four places; None for no fixes (not 0 %: nothing was promised)."""
    return None if fixed == 0 else round(kept / fixed, 4)


def since(now: datetime, days: int) -> datetime:
    """The start of a period of `days` ending at `now`."""
    return now - timedelta(days=days)


def month_start(now: datetime) -> datetime:
    """Midnight of the first of `now`'s month, in `now`'s zone (UTC for the API)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def days(now: datetime, found: Mapping[date, tuple[int, int]],
         n: int = DAILY_DAYS) -> list[Day]:
    """The last `n` days up to `now`'s, oldest first, a day without fixes as zeros."""
    last = now.date()
    return [Day(d, *found.get(d, (0, 0)))
            for d in (last - timedelta(days=n - 1 - k) for k in range(n))]


def order(rows: Sequence[Row]) -> list[Row]:
    """Overall first, then sites, then technicians; by key, then the shorter period."""
    return sorted(rows, key=lambda r: (SCOPES.index(r.scope), r.key or "", r.period_days))


CSV_HEADER = ("scope", "key", "period_days", "fixed", "kept", "kept_share",
              *(f"{m}_{q}_seconds" for m in MEASURES for q in ("p50", "p90")),
              "credits_this_month", "credit_amounts")


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


def to_csv(rows: Sequence[Row]) -> str:
    """One header row, then one row per group and period (empty cells: no data)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        spreads = [r.measures.get(m, Spread()) for m in MEASURES]
        w.writerow([r.scope, r.key or "", r.period_days, r.fixed, r.kept,
                    "" if r.kept_share is None else f"{r.kept_share:.4f}",
                    *(_num(v) for s in spreads for v in (s.p50, s.p90)), r.credits,
                    "; ".join(f"{c} {a}" for c, a in sorted(r.credit_amounts.items()))])
    return out.getvalue()
