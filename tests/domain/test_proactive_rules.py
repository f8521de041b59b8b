"""Proactive-job rules, table-driven: who is chosen, which spare, who acts, when reminded."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain import proactive
from dispatcher.domain.assign import Technician
from dispatcher.domain.proactive import ACTIONS, ProactiveState

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def tech(tid: str, skills: str = "disk", site: str = "iad1", role: str = "technician",
         shift: tuple[int, int] = (0, 0), sla_jobs: int = 0) -> Technician:
    """A technician; shift (0, 0) is round the clock."""
    return Technician(tid, site, role, frozenset(skills.split(",")), time(shift[0]),
                      time(shift[1]), sla_jobs)


@pytest.mark.parametrize(("techs", "load", "kind", "expected"), [
    ([tech("a"), tech("b")], {}, "disk", "a"),  # tie: smaller id
    ([tech("a"), tech("b")], {"a": 1}, "disk", "b"),  # fewest planned jobs
    ([tech("a", sla_jobs=1), tech("b")], {"b": 3}, "disk", "b"),  # a live SLA job rules out
    ([tech("a", sla_jobs=1)], {}, "disk", None),
    ([tech("a", skills="memory"), tech("b")], {}, "dimm", "a"),  # the skill
    ([tech("a", skills="memory")], {}, "disk", None),
    ([tech("a", site="lhr1")], {}, "disk", None),  # another site
    ([tech("a", role="manager")], {}, "disk", None),
    ([tech("a", shift=(13, 21))], {}, "disk", None),  # 09:00 is off shift
    ([tech("a", shift=(7, 19))], {}, "disk", "a"),
    ([tech("a")], {"a": proactive.MAX_LIVE_PER_TECH}, "disk", None),  # full
    ([tech("a", skills="")], {}, "host", "a"),  # a kind that needs no skill
])
def test_choose(techs: list[Technician], load: dict[str, int], kind: str,
                expected: str | None) -> None:
    assert proactive.choose(kind, "iad1", techs, load, NOW, UTC_ZONE) == expected


@pytest.mark.parametrize(("available", "expected"), [
    ({}, None),
    ({"A": 1}, None),  # the last one stays for failures
    ({"A": 2}, "A"),
    ({"A": 1, "B": 5}, "B"),
    ({"B": 3, "A": 2}, "A"),  # the first by part number
    ({"A": 0}, None),
])
def test_spare_part_keeps_one_for_failures(available: dict[str, int],
                                           expected: str | None) -> None:
    assert proactive.spare_part(available) == expected


@pytest.mark.parametrize(("role", "person", "home", "allowed"), [
    ("technician", "t-ana", "iad1", True),
    ("technician", "t-bob", "iad1", False),
    ("manager", "t-maria", "iad1", True),
    ("manager", "t-max", "lhr1", False),  # a manager of another site
    ("admin", None, None, False),
    ("customer", None, None, False),
])
def test_can_act(role: str, person: str | None, home: str | None, allowed: bool) -> None:
    assert proactive.can_act(role, person, "t-ana", home, "iad1") is allowed


@pytest.mark.parametrize(("state", "action", "expected"), [
    (ProactiveState.PLANNED, "acknowledge", ProactiveState.ACKNOWLEDGED),
    (ProactiveState.ACKNOWLEDGED, "acknowledge", ProactiveState.ACKNOWLEDGED),  # repeat
    (ProactiveState.DONE, "acknowledge", None),
    (ProactiveState.PLANNED, "done", ProactiveState.DONE),
    (ProactiveState.ACKNOWLEDGED, "done", ProactiveState.DONE),
    (ProactiveState.DISMISSED, "done", None),
    (ProactiveState.ACKNOWLEDGED, "dismiss", ProactiveState.DISMISSED),
    (ProactiveState.DONE, "dismiss", None),
])
def test_transition(state: ProactiveState, action: str,
                    expected: ProactiveState | None) -> None:
    assert proactive.transition(state, ACTIONS[action]) is expected


@pytest.mark.parametrize(("reminded", "after", "due"), [
    (None, timedelta(hours=23, minutes=59), False),
    (None, timedelta(days=1), True),
    (NOW + timedelta(days=1), timedelta(days=1, hours=12), False),
    (NOW + timedelta(days=1), timedelta(days=2), True),
])
def test_remind_daily(reminded: datetime | None, after: timedelta, due: bool) -> None:
    assert proactive.remind_due(NOW, reminded, NOW + after) is due


def test_states_match_the_sql_check() -> None:
    sql = (Path(proactive.__file__).parents[2] / "schemas" / "sql"
           / "012_proactive.sql").read_text()
    assert "CHECK (state IN ('planned', 'acknowledged', 'done', 'dismissed'))" in sql
    assert [s.value for s in ProactiveState] == ["planned", "acknowledged", "done", "dismissed"]


@pytest.mark.parametrize(("state", "expected"), [
    ("dismissed", NOW + timedelta(days=7)),
    ("done", NOW + timedelta(days=1)),
    ("open", None),
    (None, None),
])
def test_quiet_after_a_person_closed_the_same_part(state: str | None,
                                                   expected: datetime | None) -> None:
    assert proactive.quiet_until(state, NOW) == expected


H = timedelta(hours=1)
NY = ZoneInfo("America/New_York")  # 09:00 UTC on 23 Nov is 04:00 local


@pytest.mark.parametrize(("state", "who", "now", "zone", "window", "expected"), [
    # on shift: stays
    (ProactiveState.PLANNED, tech("a", shift=(7, 19)), NOW, UTC_ZONE, H, None),
    (ProactiveState.PLANNED, tech("a"), NOW, UTC_ZONE, H, None),  # round the clock
    # off shift, inside the window: stays (stayed late, swapped a shift)
    (ProactiveState.PLANNED, tech("a", shift=(0, 8)), NOW, UTC_ZONE, 2 * H, None),
    (ProactiveState.PLANNED, tech("a", shift=(0, 8)), NOW - timedelta(seconds=1), UTC_ZONE,
     H, None),
    # off shift exactly the window, or longer: back to planning
    (ProactiveState.PLANNED, tech("a", shift=(0, 8)), NOW, UTC_ZONE, H,
     "a off shift since 08:00 (UTC)"),
    (ProactiveState.PLANNED, tech("a", shift=(0, 8)), NOW, UTC_ZONE, timedelta(minutes=59),
     "a off shift since 08:00 (UTC)"),
    (ProactiveState.PLANNED, tech("a", shift=(13, 21)), NOW, UTC_ZONE, H,
     "a off shift since 21:00 (UTC)"),  # since yesterday evening
    (ProactiveState.PLANNED, tech("a", shift=(22, 6)), NOW, UTC_ZONE, H,
     "a off shift since 06:00 (UTC)"),  # a night shift across midnight
    (ProactiveState.PLANNED, tech("a", shift=(22, 6)), NOW.replace(hour=23), UTC_ZONE, H,
     None),  # on the night shift
    (ProactiveState.PLANNED, tech("a", shift=(7, 19)), NOW, NY, H,
     "a off shift since 19:00 (America/New_York)"),  # the site's own time zone
    (ProactiveState.PLANNED, tech("a", shift=(7, 19)), NOW, UTC_ZONE, 3 * H, None),
    # inactive, moved or promoted: back to planning at once
    (ProactiveState.PLANNED, None, NOW, UTC_ZONE, H, "technician inactive"),
    (ProactiveState.PLANNED, tech("a", site="lhr1"), NOW, UTC_ZONE, H,
     "a no longer works as a technician at iad1"),
    (ProactiveState.PLANNED, tech("a", role="manager"), NOW, UTC_ZONE, H,
     "a no longer works as a technician at iad1"),
    # acknowledged is the technician's word: it never moves
    (ProactiveState.ACKNOWLEDGED, None, NOW, UTC_ZONE, H, None),
    (ProactiveState.ACKNOWLEDGED, tech("a", shift=(13, 21)), NOW, UTC_ZONE, H, None),
])
def test_replan_reason(state: ProactiveState, who: Technician | None, now: datetime,
                       zone: ZoneInfo, window: timedelta, expected: str | None) -> None:
    assert proactive.replan_reason(state, "iad1", who, now, zone, window) == expected
