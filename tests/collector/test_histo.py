"""The collector's histograms and dead-letter classes (pure, table-driven)."""

from __future__ import annotations

import pytest

from collector.histo import DEAD_CLASSES, Histogram, reason_class


@pytest.mark.parametrize(("reason", "label"), [
    ("topic is not hg/v1/{site}/{host}/{kind}", "topic"),
    ("unknown kind 'x' in topic; expected one of birth", "topic"),
    ("payload of 300000 bytes exceeds 262144; not parsed", "too_large"),
    ("not JSON: JSON is malformed", "not_json"),
    ("JSON nests deeper than 32 levels (the contract needs 5); not parsed", "too_deep"),
    ("schema: $.seq: must be >= 1", "schema"),
    ("payload names iad1/a but was published under iad1/b", "wrong_topic"),
    ("payload kind 'event' does not match topic kind 'telemetry'", "wrong_topic"),
    ("unknown host 'ghost-9': add it to the fleet file and run `hourglass load`",
     "unknown_host"),
    ("host 'web-01' belongs to site 'iad1', not 'lon1'", "wrong_site"),
    ("stored alone, refused by the store: DataError: out of range", "store_refused"),
    ("refused: RecursionError while decoding: deep", "decode_error"),
    ("something new", "other"),
])
def test_each_reason_has_its_class(reason: str, label: str) -> None:
    assert reason_class(reason) == label
    assert label in DEAD_CLASSES


def test_buckets_are_cumulative_and_inclusive() -> None:
    h = Histogram((1.0, 5.0))
    for v in (0.5, 1.0, 3.0, 9.0):
        h.observe(v)
    b = h.snapshot()
    assert b.cumulative == (2, 3, 4)  # le=1 holds 0.5 and 1.0 (Prometheus bounds include)
    assert b.count == 4
    assert b.total == pytest.approx(13.5)
