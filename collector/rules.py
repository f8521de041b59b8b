"""Detection rules as data: each names its component kind, class, condition and evidence. Pure.

A failure opens an SLA incident; a prediction a proactive job without a clock. Per-message
rules here trust the agent's verdict (a component state or event `failed` or `warning`
with its slug); rules over history live in collector.stateful; the birth comparison,
the host-down sweep and facility correlation are listed here and run in the store.
The store opens at most one incident or prediction per (host, component, slug) through a
unique key, so a rule may fire on every repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.model import Detection, Message
from collector.stateful import STATEFUL
from collector.timestamps import parse_ts

Check = Callable[[Message], Iterator[Detection]]


@dataclass(frozen=True)
class Rule:
    """One detection rule: a failure opens an SLA incident; a prediction a proactive job."""

    name: str
    component_kind: str  # "*": any kind
    klass: str  # "failure" | "prediction"
    condition: str
    evidence: str
    check: Check | None = None  # None: decided elsewhere (birth, sweep, correlation, state)


def _reported_states(msg: Message, kind: str, status: str, slug: str | None) -> Iterator[Detection]:
    """Component states (telemetry) and events (event) with this status and slug.

    kind "*" matches any kind and slug None any slug (the catch-all rules).
    """
    if msg.kind == "telemetry":
        for c in msg.telemetry.components:
            if (c.status == status and c.failure and kind in ("*", c.kind)
                    and slug in (None, c.failure)):
                yield Detection(msg.host, c.id, c.kind, c.failure, msg.ts, "", c.slot, c.serial,
                                {"source": "telemetry", "detail": c.detail}, msg.seq)
    elif msg.kind == "event":
        b = msg.body
        if (b["status"] == status and b.get("failure") and kind in ("*", b["component_kind"])
                and slug in (None, b["failure"])):
            yield Detection(msg.host, b["component"], b["component_kind"], b["failure"],
                            parse_ts(b["detected_at"]), "", b.get("slot"), b.get("serial"),
                            {"source": "event", **b["evidence"]}, msg.seq)


def _reported(kind: str, status: str, slug: str | None) -> Check:
    """A rule that trusts the agent's own verdict for this kind, status and slug."""

    def check(msg: Message) -> Iterator[Detection]:
        yield from _reported_states(msg, kind, status, slug)

    return check


_AGENT = "agent state (telemetry) or event"
#: (slug, kind, condition) of every failure the agent decides (docs/signals.md).
AGENT_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("smart_failed", "disk", "SMART overall health FAILED (smartctl status or exit bit 3)"),
    ("selftest_failed", "disk", "the last SMART self-test failed"),
    ("nvme_critical_warning", "disk", "NVMe critical_warning is non-zero"),
    ("nvme_media_errors", "disk", "the agent saw NVMe media_errors rise"),
    ("raid_degraded", "raid", "/proc/mdstat shows an array degraded or a member faulty"),
    ("ecc_uncorrectable", "dimm", "EDAC counts an uncorrectable memory error on a DIMM"),
    ("mce_fatal", "cpu", "a fatal machine check on a CPU package"),
    ("fan_stopped", "fan", "the agent reports a fan at 0 rpm, below its minimum, or faulted"),
    ("fan_failed", "fan", "the BMC reports a fan sensor critical"),
    ("temp_critical", "temp", "a temperature at or above its critical limit"),
    ("psu_lost", "psu", "a power supply lost input or output"),
    ("psu_redundancy_lost", "psu", "the BMC reports power redundancy lost"),
    ("bmc_critical", "bmc", "the BMC reports another sensor critical or unrecoverable"),
    ("nic_carrier_lost", "nic", "a cabled port that had link lost carrier"),
)
#: (slug, kind, condition) of every prediction the agent may flag (state `warning`).
AGENT_PREDICTIONS: tuple[tuple[str, str, str], ...] = (
    ("smart_counter_rising", "disk", "the agent saw SMART 5/187/197/198 above its baseline"),
    ("smart_command_timeouts", "disk", "the agent saw SMART 188 jump"),
    ("prefail_threshold", "disk", "a prefail SMART attribute at its threshold (exit bit 4)"),
    ("nvme_spare_low", "disk", "NVMe available_spare below available_spare_threshold"),
    ("nvme_wear", "disk", "NVMe percentage_used >= 90"),
    ("raid_rebuild_slow", "raid", "the agent saw a rebuild run longer than its limit"),
    ("ecc_correctable_rate", "dimm", "the agent counted >= 24 corrected errors in 24 h"),
    ("mce_corrected_repeated", "cpu", "repeated corrected machine checks on one bank"),
    ("temp_high_sustained", "temp", "the agent saw a temperature above high for N minutes"),
    ("bmc_warning", "bmc", "the BMC reports a sensor non-critical"),
    ("nic_errors_rising", "nic", "the agent saw rx/tx error counters rising"),
    ("nic_speed_low", "nic", "a port linked below its usual speed"),
)

RULES: tuple[Rule, ...] = (
    *(Rule(slug, kind, "failure", cond, _AGENT, _reported(kind, "failed", slug))
      for slug, kind, cond in AGENT_FAILURES),
    *(Rule(slug, kind, "prediction", cond, _AGENT, _reported(kind, "warning", slug))
      for slug, kind, cond in AGENT_PREDICTIONS),
    # Last, so they fire only for what no rule above named: the agent is the authority on
    # failures, and a slug the collector does not know yet must not be lost.
    Rule("reported_failure", "*", "failure", "any other component state `failed` with a slug",
         _AGENT, _reported("*", "failed", None)),
    Rule("reported_warning", "*", "prediction", "any other component state `warning` with a slug",
         _AGENT, _reported("*", "warning", None)),
)

#: Rules decided outside a single message (births, the sweep, correlation).
ELSEWHERE: tuple[Rule, ...] = (
    Rule("part_missing", "disk/dimm/psu/fan/cpu", "failure",
         "a part listed by the previous birth (by seq) is absent from this one: disk_missing, "
         "dimm_missing, part_missing", "birth inventory compared with the previous birth"),
    Rule("host_down", "host", "failure",
         "last will 'offline' (or silence), then no message for offline_grace_intervals (3) "
         "telemetry intervals, then, where a BMC reports bmc.power_on, power off (or no fresh "
         "BMC word)", "host_state.last_message, the sweep, bmc_power"),
    Rule("facility_down", "rack", "failure",
         ">= facility_min_hosts (5) hosts, or >= facility_rack_fraction (50 %) of a rack's "
         "hosts, silent within facility_window_s (60 s): one facility incident (power or "
         "network) instead of per-host host_down", "host_state of the rack's hosts, the sweep"),
)

#: Kept for callers of the previous API.
HOST_DOWN = ELSEWHERE[1]


def _flagged(msg: Message) -> bool:
    """Whether the message reports any component failed or warning (most do not)."""
    if msg.kind == "event":
        return True
    if msg.kind != "telemetry":
        return False
    return any(c.status in ("failed", "warning") for c in msg.telemetry.components)


def detect(msg: Message) -> list[tuple[str, Detection]]:
    """All (class, detection) one message proves, each stamped with the rule that found it."""
    out: list[tuple[str, Detection]] = []
    if not _flagged(msg):
        return out  # the hot path: a healthy snapshot is one pass over its states
    seen: set[tuple[str, str]] = set()
    for rule in RULES:
        assert rule.check is not None  # noqa: S101 -- RULES holds only per-message rules
        for d in rule.check(msg):
            key = (d.component, d.failure)
            if key not in seen:
                seen.add(key)
                out.append((rule.klass, Detection(
                    d.host, d.component, d.kind, d.failure, d.detected_at, rule.name, d.slot,
                    d.serial, d.evidence, d.seq)))
    return out


def host_down_due(
    last_message: datetime, interval_s: float, grace_intervals: int, now: datetime
) -> datetime | None:
    """When a silent host counts as down: after grace_intervals missed intervals, else None."""
    due = last_message + timedelta(seconds=interval_s * grace_intervals)
    return due if now >= due else None


def describe() -> list[dict[str, Any]]:
    """The rule table for `hourglass rules`."""
    rows = [{"name": r.name, "component": r.component_kind, "class": r.klass,
             "condition": r.condition, "evidence": r.evidence} for r in (*RULES, *ELSEWHERE)]
    rows += [{"name": s.name, "component": s.component_kind, "class": s.klass,
              "condition": f"{s.condition} -> {s.failure}", "evidence": s.evidence}
             for s in STATEFUL]
    return rows
