"""Net Promoter Score from 0-10 survey answers. Pure.

NPS = % promoters (9-10) - % detractors (0-6); passives (7-8) count in the total only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROMOTER_MIN = 9  # the standard NPS bands: 9-10 promote
DETRACTOR_MAX = 6  # 0-6 detract; 7-8 are passive


@dataclass(frozen=True)
class Nps:
    """The figure for one group of answers, with the counts it comes from."""

    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def score(self) -> float | None:
        """-100..100, one decimal; None when nobody answered (no figure, not zero)."""
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)


def compute(scores: Iterable[int]) -> Nps:
    """The NPS of a set of 0-10 scores; a score outside 0-10 is a caller's bug."""
    promoters = passives = detractors = 0
    for s in scores:
        if not 0 <= s <= 10:
            raise ValueError(f"an NPS answer is 0-10, not {s}")
        if s >= PROMOTER_MIN:
            promoters += 1
        elif s <= DETRACTOR_MAX:
            detractors += 1
        else:
            passives += 1
    return Nps(promoters + passives + detractors, promoters, passives, detractors)


def by_group(answers: Iterable[tuple[str, int]]) -> dict[str, Nps]:
    """NPS per key of (key, score) pairs, keys in sorted order."""
    groups: dict[str, list[int]] = {}
    for key, score in answers:
        groups.setdefault(key, []).append(score)
    return {k: compute(groups[k]) for k in sorted(groups)}
