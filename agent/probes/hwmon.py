"""Fans and temperatures from the kernel's hwmon class (/sys/class/hwmon/hwmonN).

Each chip is ``hwmonN`` with a ``name``; its attributes live in the directory itself or,
for older drivers such as applesmc, in its ``device`` directory. Values follow the
kernel's sysfs-interface: fanN_input in RPM, tempN_input in millidegrees Celsius.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeResult, component_id
from agent.root import Root

HWMON = "sys/class/hwmon"
# fan1_input, temp3_input: the sensors a chip has
_INPUT = re.compile(r"^(fan|temp)(\d+)_input$")


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


def collect(root: Root) -> ProbeResult:
    """Fan and temperature readings and states of every hwmon chip."""
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
            parts.append(_fan(root, chip, index) if kind == "fan" else _temp(root, chip, index))
    return ProbeResult.merge(p for p in parts if p is not None)


def _fan(root: Root, chip: Chip, n: int) -> ProbeResult | None:
    """One fan: RPM reading; stopped is failed, below its minimum is a warning."""
    rpm = _attr(root, chip, f"fan{n}_input")
    if rpm is None:
        return None
    if _attr(root, chip, f"fan{n}_enable") == 0:
        return None  # switched off on purpose, e.g. an unused header
    cid = component_id("fan", f"{chip.label}-fan{n}")
    label = _first_text(root, [f"{d}/fan{n}_label" for d in chip.dirs])
    low = _attr(root, chip, f"fan{n}_min")
    readings = [Reading(cid, "fan.rpm", float(rpm))]
    if low is not None:
        readings.append(Reading(cid, "fan.min_rpm", float(low)))
    status, failure, detail = "ok", None, None
    if rpm == 0:
        status, failure, detail = "failed", "fan_stopped", "fan reports 0 rpm"
    elif low and rpm < low:
        status, failure, detail = "warning", "fan_slow", f"{rpm} rpm below minimum {low}"
    slot = label or f"{chip.label} fan{n}"
    return ProbeResult(
        readings=tuple(readings),
        states=(ComponentState(cid, "fan", status, slot=slot, failure=failure, detail=detail),),
        inventory=(Component(cid, "fan", slot=slot, attrs={"chip": chip.label}),),
        evidence={cid: {"source": "hwmon", "chip": chip.label, "rpm": rpm, "min_rpm": low}},
    )


def _temp(root: Root, chip: Chip, n: int) -> ProbeResult | None:
    """One temperature: degrees C; at or above its critical limit is a warning."""
    milli = _attr(root, chip, f"temp{n}_input")
    if milli is None:
        return None
    cid = component_id("temp", f"{chip.label}-temp{n}")
    label = _first_text(root, [f"{d}/temp{n}_label" for d in chip.dirs])
    crit = _attr(root, chip, f"temp{n}_crit")
    readings = [Reading(cid, "temp.celsius", milli / 1000)]
    status, failure, detail = "ok", None, None
    if crit is not None and crit > 0:
        readings.append(Reading(cid, "temp.crit_celsius", crit / 1000))
        if milli >= crit:
            # Overheating is a cooling problem, not (yet) a part to replace.
            status, failure = "warning", "over_temperature"
            detail = f"{milli / 1000:g} C at or above critical {crit / 1000:g} C"
    return ProbeResult(
        readings=tuple(readings),
        states=(ComponentState(cid, "temp", status, slot=label, failure=failure, detail=detail),),
        evidence={
            cid: {
                "source": "hwmon",
                "chip": chip.label,
                "millicelsius": milli,
                "crit_millicelsius": crit,
            }
        },
    )
