"""In-process histograms of the collector and the classes of its dead letters. Pure."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

# Publish-to-commit, from the envelope's `ts` (the agent's clock) to our commit: a local
# round trip is milliseconds (design: QoS 1 p99 0.45 ms, a batch closes at 250 ms); an
# agent that spooled through an outage sends messages hours old, hence the long tail.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
# One batch's transaction: bench/ingest measured 1,000-row COPYs in a few milliseconds;
# a second and more is a database in trouble.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# A dead letter's reason is a sentence for a person; its class is a label for a metric.
# Each prefix is the start of a reason collector.decode or collector.store writes.
REASON_CLASSES = (
    ("topic is not", "topic"),
    ("unknown kind", "topic"),
    ("payload of", "too_large"),
    ("not JSON", "not_json"),
    ("JSON nests", "too_deep"),
    ("schema:", "schema"),
    ("payload names", "wrong_topic"),
    ("payload kind", "wrong_topic"),
    ("unknown host", "unknown_host"),
    ("host ", "wrong_site"),
    ("stored alone", "store_refused"),
    ("refused:", "decode_error"),
)
DEAD_CLASSES = tuple(dict.fromkeys(c for _, c in REASON_CLASSES)) + ("other",)


def reason_class(reason: str) -> str:
    """The stable label of a dead letter's reason ('other' for one not foreseen)."""
    for prefix, label in REASON_CLASSES:
        if reason.startswith(prefix):
            return label
    return "other"


@dataclass(frozen=True)
class Buckets:
    """A histogram's state at one instant: cumulative counts per upper bound."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # one per bound, then +Inf
    total: float

    @property
    def count(self) -> int:
        """Observations in all."""
        return self.cumulative[-1]


class Histogram:
    """Observations counted into fixed buckets; safe from several writer threads."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, n: int = 1) -> None:
        """Count `n` observations of `value`."""
        i = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[i] += n
            self._sum += value * n

    def snapshot(self) -> Buckets:
        """The cumulative counts, as Prometheus wants them."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        running, cumulative = 0, []
        for c in counts:
            running += c
            cumulative.append(running)
        return Buckets(self.bounds, tuple(cumulative), total)


def empty(bounds: tuple[float, ...]) -> Buckets:
    """A histogram with no observation yet."""
    return Buckets(bounds, (0,) * (len(bounds) + 1), 0.0)
