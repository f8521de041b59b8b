"""The maintenance-window planner: exact instants across both DST edges, a window crossing
midnight, no window, and a move outside a window refused with the reason. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.domain import windows as w


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]  # year, month, day, hour...


SUNDAY_BERLIN = w.parse_windows([{"days": ["sun"], "start": "02:00", "end": "05:00",
                                  "timezone": "Europe/Berlin"}])
NIGHT_UTC = w.parse_windows([{"days": ["fri"], "start": "23:00", "end": "02:00",
                              "timezone": "UTC"}])


def test_spring_forward_a_start_in_the_gap_begins_when_the_gap_ends() -> None:
    # 2026-03-29 02:00 does not exist in Berlin (02:00 CET -> 03:00 CEST): 03:00 CEST = 01:00Z
    slot = w.next_slot(SUNDAY_BERLIN, utc(2026, 3, 27, 12))
    assert slot == w.Slot(utc(2026, 3, 29, 1), utc(2026, 3, 29, 2), utc(2026, 3, 29, 1),
                          utc(2026, 3, 29, 3))  # ends 05:00 CEST: two real hours that night


def test_spring_forward_a_window_shorter_than_the_work_that_night_is_skipped() -> None:
    short = w.parse_windows([{"days": ["sun"], "start": "02:00", "end": "03:30",
                              "timezone": "Europe/Berlin"}])
    slot = w.next_slot(short, utc(2026, 3, 27, 12))  # 29 March: 03:00-03:30 CEST, 30 min
    assert slot is not None
    assert (slot.start, slot.end) == (utc(2026, 4, 5, 0), utc(2026, 4, 5, 1))  # 02:00 CEST


def test_fall_back_an_ambiguous_start_is_its_first_occurrence() -> None:
    # 2026-10-25 02:00 happens twice; the first (CEST) is 00:00Z; 05:00 CET is 04:00Z
    slot = w.next_slot(SUNDAY_BERLIN, utc(2026, 10, 23, 12))
    assert slot == w.Slot(utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 0),
                          utc(2026, 10, 25, 4))


def test_the_plan_waits_for_the_lead_time() -> None:
    # Saturday 12:00Z: Sunday 01:00Z (02:00 CET) is only 13 h away, so the next Sunday
    slot = w.next_slot(SUNDAY_BERLIN, utc(2026, 12, 12, 12))
    assert slot is not None
    assert slot.start == utc(2026, 12, 20, 1)


def test_a_window_crossing_midnight() -> None:
    slot = w.next_slot(NIGHT_UTC, utc(2026, 12, 10, 20))  # Thursday evening
    assert slot == w.Slot(utc(2026, 12, 11, 23), utc(2026, 12, 12, 0), utc(2026, 12, 11, 23),
                          utc(2026, 12, 12, 2))
    moved = w.check_move(NIGHT_UTC, utc(2026, 12, 12, 0, 30), utc(2026, 12, 10, 20))
    assert moved == w.Slot(utc(2026, 12, 12, 0, 30), utc(2026, 12, 12, 1, 30),
                           utc(2026, 12, 11, 23), utc(2026, 12, 12, 2))


def test_no_window_keeps_the_old_behaviour_and_refuses_a_move() -> None:
    assert w.next_slot((), utc(2026, 12, 10, 20)) is None
    assert w.choices((), utc(2026, 12, 10, 20)) == []
    refused = w.check_move((), utc(2026, 12, 12, 0), utc(2026, 12, 10, 20))
    assert isinstance(refused, str)
    assert "no maintenance window" in refused


@pytest.mark.parametrize(("start", "words"), [
    (utc(2026, 12, 12, 1, 30), "not inside one of your maintenance windows"),  # runs past 02:00
    (utc(2026, 12, 12, 23, 30), "not inside one of your maintenance windows"),  # a Saturday
    (utc(2026, 12, 10, 21), "at least 2 hours from now"),
])
def test_a_move_outside_a_window_is_refused_with_the_reason(start: datetime,
                                                            words: str) -> None:
    refused = w.check_move(NIGHT_UTC, start, utc(2026, 12, 10, 20))
    assert isinstance(refused, str)
    assert words in refused
    if "windows" in words:
        assert "2026-12-11T23:00:00Z" in refused  # and where it could go instead


def test_choices_are_the_next_window_starts() -> None:
    got = w.choices(NIGHT_UTC, utc(2026, 12, 10, 20), n=2)
    assert [c.start for c in got] == [utc(2026, 12, 11, 23), utc(2026, 12, 18, 23)]


@pytest.mark.parametrize(("value", "path", "words"), [
    ([{"days": ["tue"], "start": "02:00", "end": "05:00"}], "[0].timezone", "missing"),
    ([{"days": ["tus"], "start": "02:00", "end": "05:00", "timezone": "UTC"}], "[0].days[0]",
     "unknown weekday"),
    ([{"days": ["tue"], "start": "2am", "end": "05:00", "timezone": "UTC"}], "[0].start",
     "not a time of day"),
    ([{"days": ["tue"], "start": "02:00", "end": "02:30", "timezone": "UTC"}], "[0].end",
     "shorter than"),
    ([{"days": ["tue"], "start": "02:00", "end": "05:00", "timezone": "Mars/Base"}],
     "[0].timezone", "unknown time zone"),
    ([{"days": ["tue"], "start": "02:00", "end": "05:00", "timezone": "UTC", "x": 1}],
     "[0].x", "unknown key"),
    ({"days": ["tue"]}, "", "expected a list"),
])
def test_bad_windows_name_the_key(value: object, path: str, words: str) -> None:
    with pytest.raises(w.WindowError) as exc:
        w.parse_windows(value)
    assert exc.value.path == path
    assert words in exc.value.reason


def test_a_window_round_trips_through_its_json() -> None:
    value = [{"days": ["tue", "thu"], "start": "22:00", "end": "24:00", "timezone": "UTC"}]
    assert [x.as_json() for x in w.parse_windows(value)] == value
    assert w.length(w.parse_windows(value)[0]) == timedelta(hours=2)
