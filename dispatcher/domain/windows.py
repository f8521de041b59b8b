"""Customers' maintenance windows and the slot planned work falls into. Pure.

A window is weekdays, a local start and end, and an IANA zone: `{days: [tue, thu], start:
"02:00", end: "05:00", timezone: Europe/Berlin}`. An end at or before the start crosses
midnight (the day named is the day it starts). Local times are turned into instants through
the zone on each date, so a window keeps its wall-clock times across DST: on the night the
clocks go forward a start in the gap (02:30 in Berlin) begins when the gap ends, and a window
shortened below the work's length that night is skipped; on the night they go back an
ambiguous time is its first occurrence (the window is an hour longer in real time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
#: The customer gets a day to accept, move or decline before a technician comes, and the
#: site a day to line up the person and the part: a new plan starts no sooner.
PLAN_LEAD = timedelta(hours=24)
#: A slot the customer moves to must leave the site two hours to re-plan its technician.
MOVE_LEAD = timedelta(hours=2)
#: The slot booked for one swap: the repair budget of the one-hour promise itself.
WORK = timedelta(hours=1)
#: How far ahead slots are looked for: two weeks sees every weekly window at least twice.
HORIZON = timedelta(days=15)
MAX_WINDOWS = 14  # one a day, twice over: more is a schedule, not maintenance windows
_HHMM = re.compile(r"^([0-2][0-9]):([0-5][0-9])$")


class PlanState(StrEnum):
    """The customer's answer to a proactive plan; mirrored by the CHECK in 027_care.sql."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class WindowError(ValueError):
    """A window is wrong: `path` is the key inside the windows value, `reason` what to do."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class Window:
    """One weekly maintenance window, in the customer's local time."""

    days: tuple[int, ...]  # weekday numbers, Monday 0
    start: time
    end: time  # time(0) with end_of_day: 24:00
    timezone: str
    end_of_day: bool = False

    def as_json(self) -> dict[str, Any]:
        """The fleet-file shape of this window."""
        end = "24:00" if self.end_of_day else self.end.strftime("%H:%M")
        return {"days": [DAYS[d] for d in self.days], "start": self.start.strftime("%H:%M"),
                "end": end, "timezone": self.timezone}


@dataclass(frozen=True)
class Slot:
    """A booked interval (UTC), and the window occurrence it sits in."""

    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime


def _clock(value: Any, path: str, allow_24: bool) -> tuple[time, bool]:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise WindowError(path, f"not a time of day: {value!r}; write \"HH:MM\" (24 h clock, "
                                "quoted)")
    h, mi = int(m[1]), int(m[2])
    if allow_24 and (h, mi) == (24, 0):
        return time(0), True
    if h > 23:
        raise WindowError(path, f"no such time of day: {value!r}; use 00:00 to 23:59"
                                + (" or 24:00" if allow_24 else ""))
    return time(h, mi), False


_FULL = {"monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
         "friday": "fri", "saturday": "sat", "sunday": "sun"}


def _days(value: Any, path: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise WindowError(path, f"expected a list of weekdays, e.g. [tue, thu]; use "
                                f"{', '.join(DAYS)}")
    out: list[int] = []
    for i, d in enumerate(value):
        name = d.strip().lower() if isinstance(d, str) else ""
        name = _FULL.get(name, name)
        if name not in DAYS:
            raise WindowError(f"{path}[{i}]", f"unknown weekday {d!r}; use one of "
                                              f"{', '.join(DAYS)}")
        if DAYS.index(name) in out:
            raise WindowError(f"{path}[{i}]", f"{d!r} is listed twice; list each day once")
        out.append(DAYS.index(name))
    return tuple(sorted(out))


def parse_window(value: Any, path: str = "") -> Window:
    """One window from its JSON/YAML shape, or WindowError naming the key."""

    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    if not isinstance(value, Mapping):
        raise WindowError(path, "expected a mapping {days, start, end, timezone}")
    for key in value:
        if key not in ("days", "start", "end", "timezone"):
            raise WindowError(at(str(key)), "unknown key; use days, start, end, timezone")
    for key in ("days", "start", "end", "timezone"):
        if value.get(key) is None:
            raise WindowError(at(key), f"missing required key; add `{key}:`")
    zone = value["timezone"]
    try:
        ZoneInfo(zone if isinstance(zone, str) else "")
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(at("timezone"), f"unknown time zone {zone!r}; use an IANA name such "
                                          "as UTC or Europe/Berlin") from None
    start, _ = _clock(value["start"], at("start"), False)
    end, eod = _clock(value["end"], at("end"), True)
    w = Window(_days(value["days"], at("days")), start, end, str(zone), eod)
    if length(w) < WORK:
        raise WindowError(at("end"), f"the window is shorter than the {WORK_TEXT} a swap needs; "
                                     "make it longer")
    return w


WORK_TEXT = f"{int(WORK.total_seconds() // 60)} minutes"


def parse_windows(value: Any, path: str = "") -> tuple[Window, ...]:
    """A list of windows (empty: none), or WindowError naming the item and key."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WindowError(path, "expected a list of windows, e.g. [{days: [tue], start: "
                                "\"02:00\", end: \"05:00\", timezone: UTC}]")
    if len(value) > MAX_WINDOWS:
        raise WindowError(path, f"at most {MAX_WINDOWS} windows")
    return tuple(parse_window(v, f"{path}[{i}]") for i, v in enumerate(value))


def length(w: Window) -> timedelta:
    """The nominal (wall-clock) length of a window."""
    s = w.start.hour * 60 + w.start.minute
    e = 24 * 60 if w.end_of_day else w.end.hour * 60 + w.end.minute
    return timedelta(minutes=(e - s) % (24 * 60) or 24 * 60)


def _instant(d: date, t: time, zone: ZoneInfo) -> datetime:
    """A local date and time as UTC; a time in a DST gap becomes the gap's end."""
    naive = datetime.combine(d, t)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != naive:  # in the gap: no such time
        return max(first, naive.replace(tzinfo=zone, fold=1).astimezone(UTC))
    return first


def occurrences(windows: Iterable[Window], after: datetime,
                horizon: timedelta = HORIZON) -> list[tuple[datetime, datetime]]:
    """Every window occurrence (UTC start, end) ending after `after` and starting within the
    horizon, soonest first."""
    out: set[tuple[datetime, datetime]] = set()
    for w in windows:
        zone = ZoneInfo(w.timezone)
        first = after.astimezone(zone).date() - timedelta(days=1)  # one that crossed midnight
        for n in range(horizon.days + 2):
            d = first + timedelta(days=n)
            if d.weekday() not in w.days:
                continue
            start = _instant(d, w.start, zone)
            crosses = w.end_of_day or w.end <= w.start
            end = _instant(d + timedelta(days=1) if crosses else d, w.end, zone)
            if end > after and start <= after + horizon:
                out.add((start, end))
    return sorted(out)


def next_slot(windows: Sequence[Window], now: datetime, lead: timedelta = PLAN_LEAD,
              work: timedelta = WORK) -> Slot | None:
    """The plan: the first window start at least `lead` from now long enough for the work;
    None when the customer has no window (planned work then goes as before: when a
    technician of the site is free)."""
    earliest = now + lead
    for start, end in occurrences(windows, earliest):
        if start >= earliest and end - start >= work:
            return Slot(start, start + work, start, end)
    return None


def choices(windows: Sequence[Window], now: datetime, n: int = 6,
            lead: timedelta = MOVE_LEAD, work: timedelta = WORK) -> list[Slot]:
    """Slots the customer may move a plan to: the next `n` window starts past the lead."""
    earliest = now + lead
    return [Slot(s, s + work, s, e) for s, e in occurrences(windows, earliest)
            if s >= earliest and e - s >= work][:n]


def check_move(windows: Sequence[Window], start: datetime, now: datetime,
               lead: timedelta = MOVE_LEAD, work: timedelta = WORK) -> Slot | str:
    """The slot a move to `start` books, or why it cannot (a sentence with what to do)."""
    if not windows:
        return ("you have no maintenance window, so there is no slot to move to; add a window "
                "first (PUT /api/v1/maintenance-windows), or decline the plan")
    if start < now + lead:
        return (f"a slot must start at least {int(lead.total_seconds() // 3600)} hours from "
                "now, so the site can re-plan its technician; pick a later one")
    for s, e in occurrences(windows, start - work):
        if s <= start and start + work <= e:
            return Slot(start, start + work, s, e)
    nxt = choices(windows, now, 3, lead, work)
    listed = ", ".join(c.start.isoformat().replace("+00:00", "Z") for c in nxt) or "none"
    return (f"{start.isoformat().replace('+00:00', 'Z')} to {work_end(start, work)} is not "
            f"inside one of your maintenance windows; pick a time inside one (next window "
            f"starts: {listed})")


def work_end(start: datetime, work: timedelta = WORK) -> str:
    """The end of a slot starting at `start`, RFC 3339 UTC."""
    return (start + work).astimezone(UTC).isoformat().replace("+00:00", "Z")
