"""What a customer reads of a prediction's evidence and its plan. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.domain import care

T0, T1 = datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


def pred(evidence: dict[str, object], last: dict[str, object]) -> care.Prediction:
    return care.Prediction(1, "web-01", "disk:ZA1", "disk", "smart_counter_rising", T0, T1,
                           evidence, last)


@pytest.mark.parametrize(("first", "last", "line"), [
    ({"attrs": {"smart.attr_5_raw": {"baseline": 0, "value": 2}}, "seq": 4},
     {"attrs": {"smart.attr_5_raw": {"baseline": 0, "value": 8.0}}},
     "smart.attr_5_raw (reallocated sectors) rose from 0 to 8 between 2026-12-01 08:00Z and "
     "2026-12-03 08:30Z"),
    ({"smart.attr_188_raw": 9, "previous": 1}, {"smart.attr_188_raw": 14, "previous": 9},
     "smart.attr_188_raw (command timeouts) rose from 1 to 14 between 2026-12-01 08:00Z and "
     "2026-12-03 08:30Z"),
    ({"count": 12, "window_h": 24, "seq": 3}, {},
     "smart counter rising: count 12, window_h 24 between 2026-12-01 08:00Z and "
     "2026-12-03 08:30Z"),
])
def test_evidence_says_what_rose_from_what_to_what_over_when(
        first: dict[str, object], last: dict[str, object], line: str) -> None:
    assert care.evidence(pred(first, last)) == [line]


def test_the_plan_line_with_and_without_a_window() -> None:
    inside = care.Plan(7, T0, T1, "ST8000", None, "iad1")
    assert care.plan_line(inside) == ("Planned replacement: 2026-12-01 08:00Z to 2026-12-03 "
                                      "08:30Z, inside your maintenance window; spare ST8000 is "
                                      "reserved for it at iad1.")
    none = care.Plan(7, None, None, None, "no spare disk fitting X at iad1: order one", "iad1")
    assert "you have no maintenance window" in care.plan_line(none)
    assert care.plan_line(none).endswith("no spare disk fitting X at iad1: order one.")
