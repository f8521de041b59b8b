"""Scoring and batch matching: table-driven, exact minutes, an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain import score
from dispatcher.domain.assign import Technician
from dispatcher.domain.score import Job, Layout, Profile

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UTC_TZ = ZoneInfo("UTC")
LAYOUT = Layout({"A": 4, "B": 9}, pickup_minutes=3)
ALL_DAY = (time(0), time.max)


def m(minutes: float) -> timedelta:
    """Minutes as a timedelta."""
    return timedelta(minutes=minutes)


def tech(tid: str, skills: str = "disk", shift: tuple[time, time] = ALL_DAY,
         role: str = "technician") -> Technician:
    """A technician at iad1."""
    return Technician(tid, "iad1", role, frozenset(skills.split(",")), shift[0], shift[1])


def prof(tid: str, skills: str = "disk", busy: float = 0, repair: float | None = None,
         shift: tuple[time, time] = ALL_DAY, shift_end: float | None = None,
         role: str = "technician") -> Profile:
    """A profile: busy for `busy` minutes, learned disk repair time `repair` minutes."""
    learned = {"disk": m(repair)} if repair is not None else {}
    return Profile(tech(tid, skills, shift, role), NOW + m(busy), learned,
                   NOW + m(shift_end) if shift_end is not None else None)


def job(jid: int, deadline: float = 60, kind: str = "disk", room: str | None = "A",
        spare: bool | None = True, excluded: frozenset[str] = frozenset()) -> Job:
    """A job due `deadline` minutes from NOW."""
    return Job(jid, kind, room, NOW + m(deadline), spare, excluded)


@pytest.mark.parametrize(("room", "walk", "minutes"), [
    ("A", {"A": 4, "B": 9}, 4), ("B", {"A": 4, "B": 9}, 9), ("C", {"A": 4, "*": 6}, 6),
    ("C", {"A": 4}, score.DEFAULT_WALK_MINUTES), (None, {}, score.DEFAULT_WALK_MINUTES),
])
def test_walking_time_by_room(room: str | None, walk: dict[str, float], minutes: float) -> None:
    assert Layout(walk).walk_time(room) == m(minutes)


@pytest.mark.parametrize(("samples", "expected"), [
    ([], None), ([10, 20], None), ([10, 20, 40], 20), ([10, 12, 30, 50], 21),
])
def test_learned_repair_time_is_the_median_once_enough(samples: list[float],
                                                       expected: float | None) -> None:
    got = score.learned([m(s) for s in samples], "disk")
    assert got == (m(expected) if expected is not None else None)


@pytest.mark.parametrize(("j", "p", "minutes"), [
    # walk 4 + pickup 3 + default disk 15 + verification 1
    (job(1, room="A", spare=True), prof("a"), 23),
    (job(1, room="B", spare=None), prof("a"), 9 + 15 + 1),  # no part to fetch (a reseat)
    (job(1, room="A", spare=True), prof("a", repair=8), 4 + 3 + 8 + 1),  # learned: faster
    (job(1, room="A", spare=False), prof("a"), 4 + 240 + 15 + 1),  # the part comes by courier
    (job(1, kind="dimm", spare=True), prof("a", "memory"), 4 + 3 + 25 + 1),
])
def test_duration(j: Job, p: Profile, minutes: float) -> None:
    assert score.duration(j, p, LAYOUT) == m(minutes)


@pytest.mark.parametrize(("state", "kind", "elapsed", "left"), [
    ("dispatched", "disk", 0, 4 + 15), ("on_site", "disk", 10, 9), ("on_site", "disk", 30, 1),
    ("replaced", "disk", 5, 0),
])
def test_what_a_live_job_still_needs(state: str, kind: str, elapsed: float, left: float) -> None:
    got = score.remaining(kind, state, NOW - m(elapsed), prof("a"), LAYOUT, "A", NOW)
    assert got == m(left)


@pytest.mark.parametrize(("profiles", "j", "who", "slack"), [
    # the faster technician (learned 8 min) leaves more slack
    ([prof("a", repair=20), prof("b", repair=8)], job(1), "b", 60 - 16),
    # equal: the smaller id, every time
    ([prof("b"), prof("a")], job(1), "a", 60 - 23),
    # a busy fast technician still wins when their queue leaves more slack
    ([prof("a", busy=5, repair=8), prof("b", repair=25)], job(1), "a", 60 - 21),
    # ... but never when their queue makes the job late and someone free makes it in time
    ([prof("a", busy=50, repair=5), prof("b", repair=30)], job(1), "b", 60 - 38),
    # everyone busy past the deadline: the soonest to finish takes it, late
    ([prof("a", busy=50), prof("b", busy=40)], job(1), "b", 60 - 63),
    # hard filters: the skill, the role, one transfer, the shift, the end of the shift
    ([prof("a", "memory"), prof("b")], job(1), "b", 60 - 23),
    ([prof("a", role="manager"), prof("b", busy=10)], job(1), "b", 60 - 33),
    ([prof("a"), prof("b", busy=10)], job(1, excluded=frozenset({"a"})), "b", 60 - 33),
    ([prof("a", shift=(time(13), time(21))), prof("b", busy=10)], job(1), "b", 60 - 33),
    ([prof("a", shift_end=15), prof("b", busy=10)], job(1), "b", 60 - 33),
])
def test_choose_most_slack(profiles: list[Profile], j: Job, who: str, slack: float) -> None:
    c = score.choose(j, profiles, LAYOUT, "iad1", NOW, UTC_TZ)
    assert c is not None
    assert (c.technician, c.slack) == (who, m(slack))


@pytest.mark.parametrize("profiles", [
    [], [prof("a", "memory")], [prof("a", shift=(time(13), time(21)))], [prof("a", shift_end=5)],
])
def test_nobody_fits(profiles: list[Profile]) -> None:
    assert score.choose(job(1), profiles, LAYOUT, "iad1", NOW, UTC_TZ) is None


@pytest.mark.parametrize(("shift", "now_hour", "ends_hour"), [
    ((time(7), time(19)), 9, 19), ((time(19), time(7)), 23, 7 + 24), ((time(19), time(7)), 3, 7),
])
def test_shift_end(shift: tuple[time, time], now_hour: int, ends_hour: int) -> None:
    now = NOW.replace(hour=now_hour)
    got = score.shift_end(tech("a", shift=shift), now, UTC_TZ)
    assert got == NOW.replace(hour=0) + timedelta(hours=ends_hour)


def test_shift_end_all_day_is_none() -> None:
    assert score.shift_end(tech("a"), NOW, UTC_TZ) is None
