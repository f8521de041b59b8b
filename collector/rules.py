"""Detection rules as data: each names its component kind, condition and class. Pure.

A rule turns one validated message into detections; the store opens at most one incident
per (host, component, failure) through a unique key, so a rule may fire on every repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.model import Detection, Message, parse_ts


@dataclass(frozen=True)
class Rule:
    """One detection rule: a failure opens an SLA incident; a prediction a proactive job."""

    name: str
    component_kind: str
    klass: str  # "failure" | "prediction"
    condition: str
    check: Callable[[Message], Iterator[Detection]]


def _failed_states(msg: Message, kind: str, failure: str) -> Iterator[Detection]:
    """Component states (telemetry) and events (event) that report this failure."""
    if msg.kind == "telemetry":
        for c in msg.body["components"]:
            if c["kind"] == kind and c["status"] == "failed" and c.get("failure") == failure:
                yield Detection(msg.host, c["id"], kind, failure, msg.ts, "", c.get("slot"),
                                c.get("serial"), {"source": "telemetry", "detail": c.get("detail")},
                                msg.seq)
    elif msg.kind == "event":
        b = msg.body
        if b["component_kind"] == kind and b["status"] == "failed" and b.get("failure") == failure:
            yield Detection(msg.host, b["component"], kind, failure, parse_ts(b["detected_at"]), "",
                            b.get("slot"), b.get("serial"),
                            {"source": "event", **b["evidence"]}, msg.seq)


def _smart_failed(msg: Message) -> Iterator[Detection]:
    yield from _failed_states(msg, "disk", "smart_failed")


def _fan_stopped(msg: Message) -> Iterator[Detection]:
    yield from _failed_states(msg, "fan", "fan_stopped")
    if msg.kind == "telemetry":
        slots = {c["id"]: c.get("slot") for c in msg.body["components"]}
        for r in msg.body["readings"]:
            if r["metric"] == "fan.rpm" and r["value"] == 0:
                yield Detection(msg.host, r["component"], "fan", "fan_stopped", msg.ts, "",
                                slots.get(r["component"]), None,
                                {"source": "telemetry", "fan.rpm": 0}, msg.seq)


def _reported(kind: str, failure: str) -> Callable[[Message], Iterator[Detection]]:
    """A rule that trusts the agent's own verdict for this kind and failure class."""

    def check(msg: Message) -> Iterator[Detection]:
        yield from _failed_states(msg, kind, failure)

    return check


def _psu_lost(msg: Message) -> Iterator[Detection]:
    yield from _failed_states(msg, "psu", "psu_lost")


RULES: tuple[Rule, ...] = (
    Rule("smart_failed", "disk", "failure",
         "SMART overall health FAILED (smartctl status or exit bit 3), reported by state or event",
         _smart_failed),
    Rule("fan_stopped", "fan", "failure",
         "a fan reads 0 rpm, or the agent reports it stopped", _fan_stopped),
    Rule("psu_lost", "psu", "failure",
         "a power supply lost input or output, reported by state or event", _psu_lost),
    *(
        Rule(failure, kind, "failure", condition, _reported(kind, failure))
        for failure, kind, condition in (
            ("ecc_uncorrectable", "dimm", "EDAC counts an uncorrectable memory error on a DIMM"),
            ("raid_degraded", "raid", "/proc/mdstat shows an array degraded or a member faulty"),
            ("fan_failed", "fan", "the BMC reports a fan sensor critical"),
            ("temp_critical", "temp", "the BMC reports a temperature sensor critical"),
            ("bmc_critical", "bmc", "the BMC reports another sensor critical or unrecoverable"),
        )
    ),
)

#: Host-down is not a per-message rule: the sweep confirms it (see host_down_due).
HOST_DOWN = Rule("host_down", "host", "failure",
                 "last will 'offline' (or silence), then no message for N telemetry intervals",
                 lambda msg: iter(()))


def detect(msg: Message) -> list[Detection]:
    """All detections one message proves, each stamped with the rule that found it."""
    out: list[Detection] = []
    seen: set[tuple[str, str]] = set()
    for rule in RULES:
        for d in rule.check(msg):
            key = (d.component, d.failure)
            if key not in seen:
                seen.add(key)
                out.append(Detection(d.host, d.component, d.kind, d.failure, d.detected_at,
                                     rule.name, d.slot, d.serial, d.evidence, d.seq))
    return out


def host_down_due(
    last_message: datetime, interval_s: float, grace_intervals: int, now: datetime
) -> datetime | None:
    """When a silent host counts as down: after grace_intervals missed intervals, else None."""
    due = last_message + timedelta(seconds=interval_s * grace_intervals)
    return due if now >= due else None


def describe() -> list[dict[str, Any]]:
    """The rule table for `hourglass rules`."""
    return [
        {"name": r.name, "component": r.component_kind, "class": r.klass, "condition": r.condition}
        for r in (*RULES, HOST_DOWN)
    ]
