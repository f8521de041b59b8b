"""Which reading shows the customer why an incident opened, and where its line is. Pure.

An incident carries the rule's evidence (a JSON object, different per rule) and the failed
part's kind and failure slug; telemetry holds the part's readings by metric. `chart` picks
the one metric that tells the story (reallocated sectors for a disk, the temperature for a
hot sensor, corrected errors for a DIMM), the threshold drawn across it and which side of it
is bad. The window of readings to show is decided here too (`window`), so the route only
reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_POINTS = 240  # a phone is ~360 CSS px wide: more points than that only blur the line
MIN_BUCKET_S = 30  # the agents' default interval: a finer bucket holds nothing more
MAX_HOURS = 72  # the raw telemetry's shortest retention path keeps three days at full detail


@dataclass(frozen=True)
class Chart:
    """The metric to draw for an incident, its words and its threshold."""

    metric: str
    label: str
    unit: str
    threshold: float | None
    bad: str  # "above" or "below": the side of the threshold the failure is on


# (metric, label, unit, default threshold, bad side) per failure slug; the threshold's reason
# is the rule's own (collector/rules.py, collector/stateful.py, docs/signals.md).
_BY_FAILURE: dict[str, tuple[str, str, str, float | None, str]] = {
    "smart_failed": ("smart.attr_5_raw", "Reallocated sectors", "sectors", 0.0, "above"),
    "smart_counter_rising": ("smart.attr_5_raw", "Reallocated sectors", "sectors", 0.0, "above"),
    "prefail_threshold": ("smart.attr_5_raw", "Reallocated sectors", "sectors", 0.0, "above"),
    "smart_command_timeouts": ("smart.attr_188_raw", "Command timeouts", "timeouts", 5.0,
                               "above"),
    "nvme_media_errors": ("smart.media_errors", "Media errors", "errors", 0.0, "above"),
    "ecc_uncorrectable": ("edac.ue_count", "Uncorrectable memory errors", "errors", 0.0, "above"),
    "ecc_correctable_rate": ("edac.ce_count", "Corrected memory errors", "errors", 24.0, "above"),
    "temp_critical": ("temp.celsius", "Temperature", "°C", None, "above"),
    "temp_high_sustained": ("temp.celsius", "Temperature", "°C", None, "above"),
    "fan_stopped": ("fan.rpm", "Fan speed", "rpm", 0.0, "below"),
    "fan_failed": ("fan.rpm", "Fan speed", "rpm", 0.0, "below"),
    "psu_lost": ("psu.output_watts", "Power supply output", "W", 0.0, "below"),
    "nic_errors_rising": ("nic.rx_errors", "Receive errors", "errors", None, "above"),
    "raid_rebuild_slow": ("md.sync_percent", "Rebuild progress", "%", 100.0, "below"),
    "mce_corrected_repeated": ("mce.corrected_count", "Corrected machine checks", "errors",
                               None, "above"),
}
_BY_KIND: dict[str, str] = {"disk": "smart_failed", "dimm": "ecc_uncorrectable",
                            "temp": "temp_critical", "fan": "fan_stopped", "psu": "psu_lost",
                            "nic": "nic_errors_rising", "raid": "raid_rebuild_slow",
                            "cpu": "mce_corrected_repeated"}
# Evidence keys that hold the line a rule compared against, in order of preference.
_THRESHOLD_KEYS = ("threshold", "crit_celsius", "high_celsius", "min_rpm", "previous")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def chart(kind: str, failure: str, evidence: Mapping[str, Any] | None) -> Chart | None:
    """The chart of an incident's evidence, or None when no reading tells it (host down)."""
    ev = evidence or {}
    spec = _BY_FAILURE.get(failure) or _BY_FAILURE.get(_BY_KIND.get(kind, ""))
    named = next((k for k in ev if "." in k and _number(ev[k]) is not None), None)
    if spec is None and named is None:
        return None
    if spec is None:
        assert named is not None  # noqa: S101 -- one of the two, checked above
        spec = (named, named, "", None, "above")
    metric, label, unit, threshold, bad = spec
    if named is not None and named != metric:
        metric, label, unit = named, named, ""  # the rule said which reading it acted on
    attrs = ev.get("attrs")
    if isinstance(attrs, Mapping) and attrs:  # smart_rising: each attribute over its baseline
        first = metric if metric in attrs else next(iter(attrs))
        base = attrs[first].get("baseline") if isinstance(attrs[first], Mapping) else None
        metric = first
        threshold = _number(base) if _number(base) is not None else threshold
    for key in _THRESHOLD_KEYS:
        if _number(ev.get(key)) is not None:
            threshold = _number(ev.get(key))
            break
    return Chart(metric, label, unit, threshold, bad)


def window(detected_at: datetime, hours_before: float, now: datetime) -> tuple[
        datetime, datetime, int]:
    """(start, end, bucket seconds): hours_before detection up to now, in MAX_POINTS buckets."""
    start = detected_at - timedelta(hours=hours_before)
    end = max(now, detected_at)
    end = min(end, start + timedelta(hours=2 * MAX_HOURS))  # an old incident: its first days
    span = (end - start).total_seconds()
    bucket = max(MIN_BUCKET_S, int(-(-span // MAX_POINTS)))
    return start, end, bucket
