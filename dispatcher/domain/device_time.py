"""The phone's own time of a technician's action (the Hourglass-Device-Time header).

A tap made offline reaches the server minutes later; the timeline keeps both times so the
customer and the manager see "acknowledged 10:02 on the phone, received 10:09". The
device's word is information only: it never moves a clock, a deadline or a job stamp (those
take the server's arrival time), and a value that cannot be true is ignored with the reason
noted on the timeline entry instead.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: A phone's clock may run a little ahead of ours (no NTP on a weak signal): more than this
#: ahead is not a time the tap can have happened.
AHEAD = timedelta(minutes=5)
#: The same slack before the job was dispatched (the phone's clock may equally run behind).
BEFORE = timedelta(minutes=5)
#: An offline queue older than this is not believable for a one-hour promise.
OLDEST = timedelta(days=2)
#: What of an unusable value is kept in the note (a header can be long).
SHOWN = 64
#: RFC 3339's date-time (the zone checked apart, to say so); Python's fromisoformat alone
#: also takes ISO 8601's other shapes ("20261207T1002", week dates), which no phone sends.
_SHAPE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)?")


@dataclass(frozen=True)
class DeviceTime:
    """The device time as accepted (UTC), or None with the reason it was ignored."""

    at: datetime | None
    ignored: str | None = None

    def detail(self) -> dict[str, str]:
        """What the timeline entry's detail records of it (nothing when none was sent)."""
        if self.at is not None:
            return {"device_time": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z")}
        return {"device_time_ignored": self.ignored} if self.ignored else {}


def parse(raw: str | None, now: datetime, earliest: datetime | None) -> DeviceTime:
    """The device time of an action received at `now` on a job dispatched at `earliest`."""
    if raw is None or not raw.strip():
        return DeviceTime(None)
    value = raw.strip()
    shown = value[:SHOWN] + ("…" if len(value) > SHOWN else "")
    if not _SHAPE.fullmatch(value):
        return DeviceTime(None, f"not an RFC 3339 time: {shown!r}")
    try:
        at = datetime.fromisoformat(value.upper().replace(" ", "T"))
        if at.tzinfo is None:
            return DeviceTime(None, f"no time zone (RFC 3339 needs Z or an offset): {shown!r}")
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 9999 with a negative offset
        return DeviceTime(None, f"not an RFC 3339 time: {shown!r}")
    if at > now + AHEAD:
        return DeviceTime(None, f"{shown} is {_minutes(at - now)} ahead of the server's clock")
    if earliest is not None and at < earliest - BEFORE:
        return DeviceTime(None, f"{shown} is before the job was dispatched")
    if at < now - OLDEST:
        return DeviceTime(None, f"{shown} is more than {OLDEST.days} days old")
    return DeviceTime(at)


def _minutes(d: timedelta) -> str:
    """A duration as whole minutes, or hours and days past a few hours."""
    m = int(d.total_seconds() // 60)
    return f"{m} min" if m < 180 else f"{m // 60} h" if m < 72 * 60 else f"{m // 1440} days"
