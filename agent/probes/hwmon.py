"""Fans, temperatures and voltages from the kernel's hwmon class (/sys/class/hwmon/hwmonN).

Each chip is ``hwmonN`` with a ``name``; its attributes live in the directory itself or,
for older drivers such as applesmc, in its ``device`` directory. Values follow the
kernel's sysfs-interface (Documentation/hwmon/sysfs-interface.rst): fanN_input in RPM,
tempN_input/_max/_crit in millidegrees Celsius, inN_input/_min/_max in millivolts,
``*_alarm`` and ``*_fault`` 0 or 1.

A fan at 0 rpm, below its minimum, with its alarm or fault set fails (``fan_stopped``);
a temperature at or above critical (or its crit alarm) fails (``temp_critical``); one
above its high limit (tempN_max, or its max alarm) for ``limits.temp_high_sustained_s``
on the injected monotonic clock warns (``temp_high_sustained``); a voltage rail out of
its limits or with its alarm set warns (``voltage_alarm``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.root import Root

HWMON = "sys/class/hwmon"
# fan1_input, temp3_input: the sensors a chip has
_INPUT = re.compile(r"^(fan|temp|in)(\d+)_input$")


@dataclass(frozen=True)
class Chip:
    """One hwmon chip: its sysfs directories and its stable label."""

    hwmon: str  # hwmon2
    label: str  # applesmc, or coretemp.0 when two chips share a name
    dirs: tuple[str, ...]  # root-relative directories holding its attributes


def chips(root: Root) -> list[Chip]:
    """The hwmon chips, labelled by name (and device when names repeat)."""
    found: list[tuple[str, str, str | None, tuple[str, ...]]] = []
    for entry in root.listdir(HWMON):
        base = f"{HWMON}/{entry}"
        where = [base]
        if root.listdir(f"{base}/device"):
            where.append(f"{base}/device")
        name = _first_text(root, [f"{d}/name" for d in where]) or entry
        found.append((entry, name, root.link_name(f"{base}/device"), tuple(where)))
    counts = Counter(name for _, name, _, _ in found)
    out = []
    for entry, name, device, dirs in found:
        # hwmonN numbers change across boots; the device name (coretemp.1) does not.
        label = name if counts[name] == 1 else (device or f"{name}.{entry}")
        out.append(Chip(entry, label, dirs))
    return out


def _first_text(root: Root, rels: list[str]) -> str | None:
    """The stripped text of the first of ``rels`` that exists."""
    for rel in rels:
        text = root.read_text(rel)
        if text is not None and text.strip():
            return text.strip()
    return None


def _attr(root: Root, chip: Chip, attr: str) -> int | None:
    """An integer attribute of a chip, from whichever of its directories holds it."""
    for d in chip.dirs:
        value = root.read_int(f"{d}/{attr}")
        if value is not None:
            return value
    return None


class HwmonProbe:
    """Fans and temperatures; remembers since when each temperature has been high."""

    name: ClassVar[str] = "hwmon"

    def __init__(self, ctx: ProbeContext) -> None:
        """The sustained-heat limit and the monotonic clock it is measured on."""
        self.sustained_s = ctx.limits.temp_high_sustained_s
        self.monotonic = ctx.monotonic
        self._high_since: dict[str, float] = {}  # temp component -> first seen above high

    def collect(self, root: Root) -> ProbeResult:
        """Fan and temperature readings and states of every hwmon chip."""
        return collect(root, self._high_for, self.sustained_s)

    def _high_for(self, cid: str, high: bool) -> float:
        """Seconds ``cid`` has been above its high limit (0 when it is not)."""
        if not high:
            self._high_since.pop(cid, None)
            return 0.0
        now = self.monotonic()
        return now - self._high_since.setdefault(cid, now)


def _never_high(cid: str, high: bool) -> float:
    """One look has no history: nothing has been high for any time."""
    return 0.0


def collect(
    root: Root,
    high_for: Callable[[str, bool], float] = _never_high,
    sustained_s: float = float("inf"),
) -> ProbeResult:
    """Fan and temperature readings and states of every hwmon chip.

    ``high_for(cid, high)`` says how long a temperature has been above its high limit;
    ``sustained_s`` of that is a warning.
    """
    parts = []
    for chip in chips(root):
        sensors = sorted(
            {
                (m.group(1), int(m.group(2)))
                for d in chip.dirs
                for n in root.listdir(d)
                if (m := _INPUT.match(n))
            }
        )
        for kind, index in sensors:
            if kind == "fan":
                parts.append(_fan(root, chip, index))
            elif kind == "in":
                parts.append(_voltage(root, chip, index))
            else:
                parts.append(_temp(root, chip, index, high_for, sustained_s))
    return ProbeResult.merge(p for p in parts if p is not None)


def _fan(root: Root, chip: Chip, n: int) -> ProbeResult | None:
    """One fan: RPM reading; stopped, below its minimum, alarm or fault set is failed."""
    rpm = _attr(root, chip, f"fan{n}_input")
    if rpm is None:
        return None
    if _attr(root, chip, f"fan{n}_enable") == 0:
        return None  # switched off on purpose, e.g. an unused header
    cid = component_id("fan", f"{chip.label}-fan{n}")
    label = _first_text(root, [f"{d}/fan{n}_label" for d in chip.dirs])
    low = _attr(root, chip, f"fan{n}_min")
    alarm = _attr(root, chip, f"fan{n}_alarm") or _attr(root, chip, f"fan{n}_min_alarm")
    fault = _attr(root, chip, f"fan{n}_fault")
    readings = [Reading(cid, "fan.rpm", float(rpm))]
    if low is not None:
        readings.append(Reading(cid, "fan.min_rpm", float(low)))
    detail = None
    if rpm == 0:
        detail = "fan reports 0 rpm"
    elif low and rpm < low:
        detail = f"{rpm} rpm below minimum {low}"
    elif fault:
        detail = f"fan{n}_fault is set"
    elif alarm:
        detail = f"fan{n} alarm is set at {rpm} rpm"
    status, failure = ("failed", "fan_stopped") if detail else ("ok", None)
    slot = label or f"{chip.label} fan{n}"
    return ProbeResult(
        readings=tuple(readings),
        states=(ComponentState(cid, "fan", status, slot=slot, failure=failure, detail=detail),),
        inventory=(Component(cid, "fan", slot=slot, attrs={"chip": chip.label}),),
        evidence={
            cid: {
                "source": "hwmon",
                "chip": chip.label,
                "rpm": rpm,
                "min_rpm": low,
                "alarm": alarm,
                "fault": fault,
            }
        },
    )


def _temp(
    root: Root,
    chip: Chip,
    n: int,
    high_for: Callable[[str, bool], float],
    sustained_s: float,
) -> ProbeResult | None:
    """One temperature in degrees C: critical fails, high for long enough warns."""
    milli = _attr(root, chip, f"temp{n}_input")
    if milli is None:
        return None
    cid = component_id("temp", f"{chip.label}-temp{n}")
    label = _first_text(root, [f"{d}/temp{n}_label" for d in chip.dirs])
    crit = _attr(root, chip, f"temp{n}_crit")
    high = _attr(root, chip, f"temp{n}_max")
    crit_alarm = _attr(root, chip, f"temp{n}_crit_alarm")
    max_alarm = _attr(root, chip, f"temp{n}_max_alarm")
    readings = [Reading(cid, "temp.celsius", milli / 1000)]
    # drivers report 0 (or nothing) for a limit they do not have
    if high is not None and high > 0:
        readings.append(Reading(cid, "temp.high_celsius", high / 1000))
    if crit is not None and crit > 0:
        readings.append(Reading(cid, "temp.crit_celsius", crit / 1000))
    above = bool(max_alarm) or (high is not None and high > 0 and milli > high)
    lasted = high_for(cid, above)
    status, failure, detail = "ok", None, None
    if crit_alarm or (crit is not None and crit > 0 and milli >= crit):
        status, failure = "failed", "temp_critical"
        detail = f"{milli / 1000:g} C at or above critical" + (
            f" {crit / 1000:g} C" if crit else " (alarm)"
        )
    elif above and lasted >= sustained_s:
        status, failure = "warning", "temp_high_sustained"
        limit = f"high {high / 1000:g} C" if high else "its high limit (alarm)"
        detail = f"{milli / 1000:g} C above {limit} for {lasted:.0f} s"
    return ProbeResult(
        readings=tuple(readings),
        states=(ComponentState(cid, "temp", status, slot=label, failure=failure, detail=detail),),
        evidence={
            cid: {
                "source": "hwmon",
                "chip": chip.label,
                "millicelsius": milli,
                "high_millicelsius": high,
                "crit_millicelsius": crit,
                "high_for_s": lasted,
            }
        },
    )


def _voltage(root: Root, chip: Chip, n: int) -> ProbeResult | None:
    """One voltage rail in volts: out of its limits (or its alarm set) warns ``voltage_alarm``.

    A rail out of spec points at a power supply or voltage regulator going bad, but the
    board still runs: a proactive job, not an SLA failure. The component kind is
    ``chassis`` (a rail belongs to the board), named ``chassis:<chip>-in<n>``.
    """
    milli = _attr(root, chip, f"in{n}_input")
    if milli is None:
        return None
    cid = component_id("chassis", f"{chip.label}-in{n}")
    label = _first_text(root, [f"{d}/in{n}_label" for d in chip.dirs])
    low, high = _attr(root, chip, f"in{n}_min"), _attr(root, chip, f"in{n}_max")
    alarm = (_attr(root, chip, f"in{n}_alarm") or _attr(root, chip, f"in{n}_min_alarm")
             or _attr(root, chip, f"in{n}_max_alarm"))
    readings = [Reading(cid, "volt.volts", milli / 1000)]
    # drivers report 0 for a limit nobody set; such a limit is no limit
    if low:
        readings.append(Reading(cid, "volt.min_volts", low / 1000))
    if high:
        readings.append(Reading(cid, "volt.max_volts", high / 1000))
    detail = None
    if alarm:
        detail = f"in{n} alarm is set at {milli / 1000:g} V"
    elif low and milli < low:
        detail = f"{milli / 1000:g} V below its minimum {low / 1000:g} V"
    elif high and milli > high:
        detail = f"{milli / 1000:g} V above its maximum {high / 1000:g} V"
    status, failure = ("warning", "voltage_alarm") if detail else ("ok", None)
    return ProbeResult(
        readings=tuple(readings),
        states=(ComponentState(cid, "chassis", status, slot=label or f"{chip.label} in{n}",
                               failure=failure, detail=detail),),
        evidence={cid: {"source": "hwmon", "chip": chip.label, "millivolts": milli,
                        "min_millivolts": low, "max_millivolts": high, "alarm": alarm}},
    )
