"""NPS: the bands at their edges, the arithmetic, groups."""

from __future__ import annotations

import pytest

from dispatcher.domain import nps


@pytest.mark.parametrize(("scores", "responses", "promoters", "passives", "detractors", "score"), [
    ([], 0, 0, 0, 0, None),
    ([10], 1, 1, 0, 0, 100.0),
    ([9], 1, 1, 0, 0, 100.0),
    ([8], 1, 0, 1, 0, 0.0),
    ([7], 1, 0, 1, 0, 0.0),
    ([6], 1, 0, 0, 1, -100.0),
    ([0], 1, 0, 0, 1, -100.0),
    ([10, 9, 8, 7, 6, 0], 6, 2, 2, 2, 0.0),
    ([10, 10, 6], 3, 2, 0, 1, 33.3),
    ([10, 3, 3], 3, 1, 0, 2, -33.3),
    ([9, 9, 9, 8], 4, 3, 1, 0, 75.0),
    ([7, 8, 7, 8], 4, 0, 4, 0, 0.0),
])
def test_nps_bands_and_score(scores: list[int], responses: int, promoters: int, passives: int,
                             detractors: int, score: float | None) -> None:
    got = nps.compute(scores)
    assert (got.responses, got.promoters, got.passives, got.detractors) == (
        responses, promoters, passives, detractors)
    assert got.score == score


@pytest.mark.parametrize("bad", [-1, 11])
def test_a_score_outside_0_to_10_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="0-10"):
        nps.compute([5, bad])


def test_by_group_keeps_groups_apart_in_key_order() -> None:
    got = nps.by_group([("lon1", 10), ("iad1", 0), ("lon1", 6), ("iad1", 9), ("iad1", 10)])
    assert list(got) == ["iad1", "lon1"]
    assert got["iad1"].score == 33.3
    assert got["iad1"].responses == 3
    assert got["lon1"].score == 0.0
    assert got["lon1"].responses == 2
