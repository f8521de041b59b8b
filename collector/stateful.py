"""Rules that need history: baselines, windows and streaks over a component's readings. Pure.

Each rule is a step function: (its previous state of one component, that component's
readings in one message, the message's time, serial, parameters) -> (new state, finding).
States are small JSON objects the store keeps in `rule_state` and writes only when they
change, so a healthy fleet costs no writes. A message older (by seq) than the one that
last changed a state is stale and skipped: counters are cumulative, so the newer message
already carried what the stale one knew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.model import Detection, Message

State = dict[str, Any]
Finding = dict[str, Any]  # the evidence of one firing
Step = Callable[[State | None, Mapping[str, float], datetime, str | None, "RuleParams"],
                tuple[State | None, Finding | None]]


@dataclass(frozen=True)
class RuleParams:
    """Thresholds of the stateful rules (collector config keys of the same names)."""

    ecc_ce_per_24h: int = 24  # signals.md: >= 24 corrected errors a day per DIMM
    temp_high_minutes: float = 10.0  # signals.md: above high for 10 minutes
    temp_hysteresis_c: float = 2.0  # sensors jitter about 1 °C; a dip this deep ends a streak
    # 24 h, as the agent's limits.raid_rebuild_limit_s: a large member rebuilt at low
    # priority under load can take most of a day; longer than that is a slow rebuild
    raid_rebuild_limit_minutes: float = 1440.0
    smart_timeout_jump: float = 5.0  # one timeout after a power event is common; 5 at once is not
    nic_errors_per_hour: float = 100.0  # a few errors a day on a busy port are noise
    fan_zero_readings: int = 2  # one 0 rpm reading is a sensor glitch; two in a row a stop


SMART_RISING = ("smart.attr_5_raw", "smart.attr_187_raw", "smart.attr_197_raw",
                "smart.attr_198_raw")


def _serial_reset(prev: State | None, serial: str | None) -> bool:
    """A baseline belongs to one serial: a new disk in the slot starts a new one."""
    return prev is None or prev.get("serial") != serial


def smart_rising(prev: State | None, v: Mapping[str, float], ts: datetime, serial: str | None,
                 p: RuleParams) -> tuple[State | None, Finding | None]:
    """SMART 5/187/197/198 raw above the first value seen for this serial."""
    attrs = {k: v[k] for k in SMART_RISING if k in v}
    if not attrs:
        return prev, None
    if prev is None or _serial_reset(prev, serial):
        return {"serial": serial, "base": attrs}, None
    base = dict(prev["base"])
    for k, x in attrs.items():
        base.setdefault(k, x)
    rising = {k: {"baseline": base[k], "value": x} for k, x in attrs.items() if x > base[k]}
    state = prev if base == prev["base"] else {"serial": serial, "base": base}
    return state, ({"attrs": rising} if rising else None)


def _counter(metric: str, threshold: Callable[[RuleParams], float]) -> Step:
    """A counter that fires when it rises by at least threshold since its previous value."""

    def step(prev: State | None, v: Mapping[str, float], ts: datetime, serial: str | None,
             p: RuleParams) -> tuple[State | None, Finding | None]:
        if metric not in v:
            return prev, None
        x = v[metric]
        if prev is None or _serial_reset(prev, serial):
            return {"serial": serial, "last": x}, None
        if x == prev["last"]:
            return prev, None
        rise = x - prev["last"]
        found = {metric: x, "previous": prev["last"]} if rise >= threshold(p) else None
        return {"serial": serial, "last": x}, found

    return step


def _window(metrics: tuple[str, ...], window_s: float, bucket_s: float,
            threshold: Callable[[RuleParams], float]) -> Step:
    """Increase of a cumulative counter (sum of metrics) within a sliding window.

    Increments are kept in buckets of bucket_s (a bucket leaves the window whole, so the
    count errs low by at most one bucket); a counter that went down was reset and counts
    from zero.
    """

    def step(prev: State | None, v: Mapping[str, float], ts: datetime, serial: str | None,
             p: RuleParams) -> tuple[State | None, Finding | None]:
        if not any(m in v for m in metrics):
            return prev, None
        raw = sum(v.get(m, 0.0) for m in metrics)
        t = ts.timestamp()
        if prev is None:
            return {"raw": raw, "pts": []}, None
        delta = raw - prev["raw"] if raw >= prev["raw"] else raw
        pts = [list(pt) for pt in prev["pts"] if pt[0] > t - window_s]
        if delta > 0:
            if pts and t - pts[-1][0] < bucket_s:
                pts[-1][1] += delta
            else:
                pts.append([t, delta])
        count = sum(pt[1] for pt in pts)
        state = prev if (raw == prev["raw"] and pts == prev["pts"]) else {"raw": raw, "pts": pts}
        found = ({"count": count, "window_h": window_s / 3600, "threshold": threshold(p)}
                 if count >= threshold(p) else None)
        return state, found

    return step


def temp_sustained(prev: State | None, v: Mapping[str, float], ts: datetime,
                   serial: str | None, p: RuleParams) -> tuple[State | None, Finding | None]:
    """Above high for temp_high_minutes; only a dip of hysteresis below high ends a streak."""
    if "temp.celsius" not in v or "temp.high_celsius" not in v:
        return prev, None
    c, high, t = v["temp.celsius"], v["temp.high_celsius"], ts.timestamp()
    since = prev.get("since") if prev else None
    state = prev
    if c > high and since is None:
        since, state = t, {"since": t}
    elif c <= high - p.temp_hysteresis_c and since is not None:
        since, state = None, {"since": None}
    if since is not None and t - since >= p.temp_high_minutes * 60:
        return state, {"celsius": c, "high_celsius": high, "above_since_s": t - since}
    return state, None


def raid_rebuild(prev: State | None, v: Mapping[str, float], ts: datetime, serial: str | None,
                 p: RuleParams) -> tuple[State | None, Finding | None]:
    """An array syncing (md.sync_percent below 100) for longer than the limit."""
    if not any(k.startswith("md.") for k in v):
        return prev, None
    syncing = v.get("md.sync_percent", 100.0) < 100.0  # the agent sends it only while syncing
    t = ts.timestamp()
    since = prev.get("since") if prev else None
    state = prev
    if syncing and since is None:
        since, state = t, {"since": t}
    elif not syncing and since is not None:
        since, state = None, {"since": None}
    if since is not None and t - since >= p.raid_rebuild_limit_minutes * 60:
        return state, {"sync_percent": v["md.sync_percent"], "syncing_s": t - since}
    return state, None


def fan_zero(prev: State | None, v: Mapping[str, float], ts: datetime, serial: str | None,
             p: RuleParams) -> tuple[State | None, Finding | None]:
    """fan.rpm at 0 for fan_zero_readings readings in a row."""
    if "fan.rpm" not in v:
        return prev, None
    zeros = prev["zeros"] if prev else 0
    if v["fan.rpm"] != 0:
        return (None if prev is None else prev if zeros == 0 else {"zeros": 0}), None
    first = prev["first"] if prev and zeros else ts.timestamp()
    state = {"zeros": zeros + 1, "first": first}
    found = ({"fan.rpm": 0, "zero_readings": zeros + 1, "zero_since": first}
             if zeros + 1 >= p.fan_zero_readings else None)
    return state, found


@dataclass(frozen=True)
class StatefulRule:
    """A rule over one component's readings across messages."""

    name: str
    failure: str  # the failure or prediction slug it opens
    component_kind: str
    klass: str  # "failure" | "prediction"
    condition: str
    evidence: str
    step: Step
    metrics: frozenset[str]  # the readings it reads; a message without them costs nothing


_MD = frozenset({"md.sync_percent", "md.disks_faulty", "md.disks_working", "md.disks_wanted",
                 "md.disks_spare"})
STATEFUL: tuple[StatefulRule, ...] = (
    StatefulRule("smart_baseline", "smart_counter_rising", "disk", "prediction",
                 "SMART 5/187/197/198 raw above the first value seen for this serial",
                 "telemetry smart.attr_<id>_raw, baseline per serial in rule_state", smart_rising,
                 frozenset(SMART_RISING)),
    StatefulRule("smart_188_jump", "smart_command_timeouts", "disk", "prediction",
                 "SMART 188 (command timeouts) jumps by >= smart_timeout_jump (5) at once",
                 "telemetry smart.attr_188_raw", _counter("smart.attr_188_raw",
                                                          lambda p: p.smart_timeout_jump),
                 frozenset({"smart.attr_188_raw"})),
    StatefulRule("nvme_media_rising", "nvme_media_errors", "disk", "failure",
                 "NVMe media_errors above its previous value for this serial",
                 "telemetry smart.media_errors", _counter("smart.media_errors", lambda p: 1.0),
                 frozenset({"smart.media_errors"})),
    StatefulRule("ecc_ce_window", "ecc_correctable_rate", "dimm", "prediction",
                 ">= ecc_ce_per_24h (24) corrected memory errors on one DIMM within 24 h",
                 "telemetry edac.ce_count per dimm:<label>",
                 _window(("edac.ce_count",), 86400.0, 3600.0, lambda p: p.ecc_ce_per_24h),
                 frozenset({"edac.ce_count"})),
    StatefulRule("nic_error_window", "nic_errors_rising", "nic", "prediction",
                 ">= nic_errors_per_hour (100) rx+tx errors within one hour",
                 "telemetry nic.rx_errors, nic.tx_errors",
                 _window(("nic.rx_errors", "nic.tx_errors"), 3600.0, 300.0,
                         lambda p: p.nic_errors_per_hour),
                 frozenset({"nic.rx_errors", "nic.tx_errors"})),
    StatefulRule("temp_sustained", "temp_high_sustained", "temp", "prediction",
                 "temp.celsius above temp.high_celsius for temp_high_minutes (10); a dip of "
                 "temp_hysteresis_c (2 °C) below high ends the streak",
                 "telemetry temp.celsius, temp.high_celsius", temp_sustained,
                 frozenset({"temp.celsius", "temp.high_celsius"})),
    StatefulRule("raid_rebuild_duration", "raid_rebuild_slow", "raid", "prediction",
                 "an md array syncing for longer than raid_rebuild_limit_minutes (1440)",
                 "telemetry md.sync_percent", raid_rebuild, _MD),
    StatefulRule("fan_rpm_zero", "fan_stopped", "fan", "failure",
                 "fan.rpm reads 0 in fan_zero_readings (2) messages in a row; one 0 is a glitch",
                 "telemetry fan.rpm", fan_zero, frozenset({"fan.rpm"})),
)
#: Every metric some stateful rule reads, and the rules per component kind: the hot path
#: looks only at these.
WATCHED: frozenset[str] = frozenset().union(*(r.metrics for r in STATEFUL))
BY_KIND: dict[str, tuple[StatefulRule, ...]] = {
    k: tuple(r for r in STATEFUL if r.component_kind == k) for k in {r.component_kind
                                                                       for r in STATEFUL}}

Key = tuple[str, str, str]  # host, component, rule
Stored = tuple[int, State]  # the seq that last changed it, the state


def evaluate(states: Mapping[Key, Stored], m: Message,
             params: RuleParams) -> tuple[dict[Key, Stored], list[tuple[str, Detection]]]:
    """One telemetry message through every stateful rule: changed states and detections."""
    by_comp: dict[str, dict[str, float]] = {}
    for r in m.telemetry.readings:
        if r.metric in WATCHED:
            by_comp.setdefault(r.component, {})[r.metric] = r.value
    updates: dict[Key, Stored] = {}
    found: list[tuple[str, Detection]] = []
    if not by_comp:
        return updates, found
    meta = {c.id: (c.slot, c.serial) for c in m.telemetry.components}
    for comp, values in by_comp.items():
        kind = comp.partition(":")[0]
        slot, serial = meta.get(comp, (None, None))
        if serial is None and kind == "disk":
            serial = comp.partition(":")[2]  # disks are named by serial: disk:<serial>
        for rule in BY_KIND.get(kind, ()):
            key = (m.host, comp, rule.name)
            stored = states.get(key)
            if stored is not None and stored[0] >= m.seq:
                continue  # stale: a newer message already changed this state
            prev = stored[1] if stored else None
            state, finding = rule.step(prev, values, m.ts, serial, params)
            if state is not None and state != prev:
                updates[key] = (m.seq, state)
            if finding is not None:
                found.append((rule.klass, Detection(
                    m.host, comp, kind, rule.failure, m.ts, rule.name, slot, serial,
                    {"source": "telemetry", **finding}, m.seq)))
    return updates, found
