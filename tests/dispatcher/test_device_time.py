"""The phone's time of a tap (dispatcher.domain.device_time): believed within its bounds,
otherwise ignored with the reason; table-driven, exact times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.domain.device_time import DeviceTime, parse

NOW = datetime(2026, 12, 7, 10, 9, tzinfo=UTC)  # when the tap arrived
DISPATCHED = datetime(2026, 12, 7, 9, 58, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "at"), [
    ("2026-12-07T10:02:00Z", datetime(2026, 12, 7, 10, 2, tzinfo=UTC)),
    ("2026-12-07T10:02:00.250z", datetime(2026, 12, 7, 10, 2, 0, 250000, tzinfo=UTC)),
    ("2026-12-07T05:02:00-05:00", datetime(2026, 12, 7, 10, 2, tzinfo=UTC)),
    ("  2026-12-07T10:13:59Z ", datetime(2026, 12, 7, 10, 13, 59, tzinfo=UTC)),  # 5 min ahead
    ("2026-12-07T09:53:00Z", datetime(2026, 12, 7, 9, 53, tzinfo=UTC)),  # 5 min before dispatch
])
def test_a_believable_time_is_kept_in_utc(raw: str, at: datetime) -> None:
    told = parse(raw, NOW, DISPATCHED)
    assert told == DeviceTime(at)
    assert told.detail() == {"device_time": at.isoformat().replace("+00:00", "Z")}


@pytest.mark.parametrize(("raw", "why"), [
    ("yesterday", "not an RFC 3339 time: 'yesterday'"),
    ("2026-12-07T10:02:00", "no time zone (RFC 3339 needs Z or an offset): '2026-12-07T10:02:00'"),
    ("2026-12-07T10:15:00Z", "2026-12-07T10:15:00Z is 6 min ahead of the server's clock"),
    ("2027-12-07T10:15:00Z", "2027-12-07T10:15:00Z is 365 days ahead of the server's clock"),
    ("2026-12-07T09:52:00Z", "2026-12-07T09:52:00Z is before the job was dispatched"),
    ("9999-12-31T23:59:59-23:00", "not an RFC 3339 time: '9999-12-31T23:59:59-23:00'"),
    ("1" * 100, f"not an RFC 3339 time: '{'1' * 64}…'"),
])
def test_an_impossible_time_is_ignored_with_the_reason(raw: str, why: str) -> None:
    told = parse(raw, NOW, DISPATCHED)
    assert told == DeviceTime(None, why)
    assert told.detail() == {"device_time_ignored": why}


def test_a_queue_days_old_is_not_believed_without_a_dispatch_time() -> None:
    told = parse("2026-12-04T10:00:00Z", NOW, None)
    assert told.ignored == "2026-12-04T10:00:00Z is more than 2 days old"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_no_time_sent_records_nothing(raw: str | None) -> None:
    assert parse(raw, NOW, DISPATCHED).detail() == {}
