"""The BMC in band: ``ipmitool sdr elist`` sensors and ``ipmitool sel elist`` events.

Power supplies are judged from their discrete sensor's event text (lost input, failure,
lost redundancy); threshold sensors by the status ipmitool derives from the BMC's own
thresholds (critical or non-recoverable: failed; non-critical: warning). The SEL adds
the latest entries about a part to its evidence; decisions come from the SDR, which is
the BMC's current view, while the log may keep an assertion whose end was never logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.probes.coverage import (
    NO_ANSWER,
    NO_DEVICES,
    PACKAGES,
    PERMISSION_DENIED,
    TOOL_MISSING,
    WORKING,
    Coverage,
)
from agent.root import Root

#: ipmitool talks to the BMC over a slow KCS interface (seconds for a full SDR walk), and
#: BMC thresholds move slowly; once a minute stays well inside the hour the SLA allows.
IPMI_INTERVAL_S = 60.0
#: SEL entries kept as evidence per part.
EVIDENCE_LINES = 5

# Status column. `sdr elist` prints the extended form (ipmi_sdr.c, ipmi_sdr_get_status):
# lnr/unr/lcr/ucr/lnc/unc; plain `sdr list` prints nr/cr/nc; "ns" is no reading.
_FAILED = {"nr", "lnr", "unr", "cr", "lcr", "ucr"}
_WARNING = {"nc", "lnc", "unc"}
# Discrete event texts of ipmitool (ipmi_sel.c, sensor types 08h Power Supply, 09h Power
# Unit, and the generic redundancy states of event type 0Bh).
_PSU_FAILED = re.compile(
    r"failure detected|ac lost|input lost|out-of-range|config error|redundancy lost"
    r"|non-redundant: insufficient|non-redundant: sufficient",
    re.I,
)
_PSU_WARNING = re.compile(r"predictive failure|redundancy degraded|power supply inactive", re.I)
# "Power Supply 2", "PS1 Status", "PSU2", "PWR Supply 3": the PSU's index
_PSU_NAME = re.compile(r"\b(?:power\s*supply|pwr\s*supply|psu?)\s*#?(\d+)", re.I)
# "5040 RPM", "25 degrees C", "12.04 Volts", "7.20 Amps", "110 Watts"
_NUMERIC = re.compile(r"^(-?[\d.]+)\s+(RPM|degrees C|Volts|Amps|Watts)\b")
_METRIC = {"RPM": "fan.rpm", "degrees C": "temp.celsius", "Volts": "volts", "Amps": "amps",
           "Watts": "watts"}
#: Entity 10 is "power supply" in the IPMI entity table; "10.2" is the second one.
_PSU_ENTITY = "10"


@dataclass(frozen=True)
class Sensor:
    """One line of ``ipmitool sdr elist`` (or of plain ``sdr list``)."""

    name: str
    status: str
    reading: str
    entity: str | None = None


def parse_sdr(text: str) -> list[Sensor]:
    """Sensors of `sdr elist` (name|id|status|entity|reading) or `sdr` (name|reading|status)."""
    out = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 5:
            # "Power Supply 1   | 03h | ok  | 10.1 | 110 Watts, Presence detected"
            out.append(Sensor(cols[0], cols[2].lower(), cols[4], cols[3]))
        elif len(cols) == 3:
            # "Fan 1A Tach      | 2610 RPM          | ok"
            out.append(Sensor(cols[0], cols[2].lower(), cols[1]))
    return [s for s in out if s.name]


def parse_sel(text: str) -> list[list[str]]:
    """`sel elist` rows: "1 | 04/09/2019 | 10:05:23 | Power Supply #0x32 | AC lost | Asserted"."""
    rows = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) >= 5 and cols[0]:
            rows.append(cols)
    return rows


def psu_index(sensor: Sensor) -> str | None:
    """The PSU this sensor belongs to: its entity instance (10.N) or the number in its name."""
    if sensor.entity and sensor.entity.split(".")[0] == _PSU_ENTITY and "." in sensor.entity:
        return sensor.entity.split(".", 1)[1]
    m = _PSU_NAME.search(sensor.name)
    return m.group(1) if m else None


def judge(sensor: Sensor, kind: str) -> tuple[str, str | None]:
    """Status and failure slug of one sensor."""
    text = sensor.reading
    if kind in ("psu", "redundancy"):
        if _PSU_FAILED.search(text) or sensor.status in _FAILED:
            return "failed", "psu_lost"
        if _PSU_WARNING.search(text) or sensor.status in _WARNING:
            return "warning", "psu_degraded"
        return "ok", None
    if sensor.status in _FAILED:
        return "failed", {"fan": "fan_failed", "temp": "temp_critical"}.get(kind, "bmc_critical")
    if sensor.status in _WARNING:
        return "warning", "bmc_warning"
    return "ok", None


def classify(sensor: Sensor) -> tuple[str, str] | None:
    """(kind, component id) of a sensor worth a state, or None for the rest."""
    if re.search(r"redundan", sensor.name + " " + sensor.reading, re.I) and psu_index(
        sensor
    ) is None:
        return "redundancy", "psu:redundancy"
    if (n := psu_index(sensor)) is not None:
        return "psu", f"psu:{n}"
    unit = m.group(2) if (m := _NUMERIC.match(sensor.reading)) else None
    if unit == "RPM":
        return "fan", component_id("fan", sensor.name)
    if unit == "degrees C":
        return "temp", component_id("temp", sensor.name)
    if sensor.status in _FAILED | _WARNING:
        return "bmc", component_id("bmc", sensor.name)
    return None


_RANK = {"ok": 0, "warning": 1, "failed": 2}


class IpmiProbe:
    """PSUs, fans, temperatures and critical sensors as the BMC sees them."""

    name: ClassVar[str] = "ipmi"

    def __init__(self, ctx: ProbeContext) -> None:
        """Remember the clock; the SDR is re-read every IPMI_INTERVAL_S."""
        self.monotonic = ctx.monotonic
        self._last: ProbeResult | None = None
        self._last_at = 0.0

    def collect(self, root: Root) -> ProbeResult:
        """The last SDR/SEL answer, refreshed when older than IPMI_INTERVAL_S."""
        now = self.monotonic()
        if self._last is None or now - self._last_at >= IPMI_INTERVAL_S:
            self._last, self._last_at = self._read(root), now
        return self._last

    def _read(self, root: Root) -> ProbeResult:
        """Run (or replay) ipmitool and judge what it printed."""
        sdr = root.cmd_output("ipmitool", ["sdr", "elist"])
        if sdr is None or sdr.exit_status != 0 or not sdr.stdout.strip():
            # no BMC, no ipmitool, or no driver: nothing to report, but say which
            return ProbeResult(coverage=(blind(root, sdr is not None),))
        sel = root.cmd_output("ipmitool", ["sel", "elist"])
        found = result(parse_sdr(sdr.stdout), parse_sel(sel.stdout) if sel else [])
        return ProbeResult(found.readings, found.states, found.inventory, found.evidence,
                           (Coverage("ipmi", WORKING, f"{len(found.states)} parts from the SDR"),))


def blind(root: Root, ran: bool) -> Coverage:
    """Why ipmitool told nothing: no BMC interface, no ipmitool, no permission, or no answer."""
    # the kernel's IPMI driver makes /dev/ipmi0 and /sys/class/ipmi/ipmi0 for a local BMC
    bmc = bool(root.listdir("sys/class/ipmi")) or root.exists("dev/ipmi0")
    if not bmc:
        return Coverage("ipmi", NO_DEVICES, "no local BMC interface (/dev/ipmi0)")
    if not root.has_tool("ipmitool"):
        return Coverage("ipmi", TOOL_MISSING, "ipmitool not found", PACKAGES["ipmitool"])
    if not root.privileged():
        return Coverage("ipmi", PERMISSION_DENIED, "ipmitool needs root for /dev/ipmi0")
    return Coverage("ipmi", NO_ANSWER, "ipmitool sdr elist " + ("failed" if ran else
                                                                 "gave nothing"))


def result(sensors: Iterable[Sensor], sel: list[list[str]]) -> ProbeResult:
    """Readings, one state per part (the worst of its sensors), inventory and evidence."""
    readings: list[Reading] = []
    worst: dict[str, tuple[str, str, str | None, list[Sensor]]] = {}
    for s in sensors:
        cls = classify(s)
        if cls is None:
            continue
        kind, cid = cls
        if (m := _NUMERIC.match(s.reading)) is not None:
            metric = _METRIC[m.group(2)]
            readings.append(Reading(cid, metric if kind != "psu" else f"psu.{metric}",
                                    float(m.group(1))))
        status, failure = judge(s, kind)
        prev = worst.get(cid)
        seen = [*prev[3], s] if prev else [s]
        if prev is None or _RANK[status] > _RANK[prev[1]]:
            worst[cid] = ("psu" if kind == "redundancy" else kind, status, failure, seen)
        else:
            worst[cid] = (*prev[:3], seen)
    _fold_redundancy(worst)
    states, inventory, evidence = [], [], {}
    for cid, (kind, status, failure, seen) in worst.items():
        bad = [s for s in seen if judge(s, kind)[0] != "ok"]
        detail = "; ".join(f"{s.name}: {s.reading or s.status} ({s.status})" for s in bad)
        slot = cid.split(":", 1)[1]
        states.append(ComponentState(cid, kind, status, slot=slot, failure=failure,
                                     detail=detail or None))
        if kind == "psu":
            inventory.append(Component(cid, "psu", slot=slot))
        evidence[cid] = _evidence(seen, sel)
    return ProbeResult(tuple(readings), tuple(states), tuple(inventory), evidence)


def _fold_redundancy(worst: dict[str, tuple[str, str, str | None, list[Sensor]]]) -> None:
    """Lost redundancy explained by a failed PSU is that PSU's evidence, not a second part."""
    red = worst.get("psu:redundancy")
    failed = [c for c, v in worst.items() if v[0] == "psu" and v[1] == "failed"
              and c != "psu:redundancy"]
    if red is None or red[1] != "failed" or not failed:
        return
    for cid in failed:
        worst[cid] = (*worst[cid][:3], [*worst[cid][3], *red[3]])
    del worst["psu:redundancy"]


def _evidence(seen: list[Sensor], sel: list[list[str]]) -> dict[str, Any]:
    """The sensors behind a state and the latest SEL lines naming them."""
    names = {s.name.lower() for s in seen}
    kinds = {"power supply"} if any(psu_index(s) for s in seen) else set()
    lines = [" | ".join(r) for r in sel
             if r[3].lower() in names or any(r[3].lower().startswith(k) for k in kinds)]
    return {
        "source": "ipmitool sdr elist",
        "sensors": [{"name": s.name, "status": s.status, "reading": s.reading} for s in seen],
        "sel": lines[-EVIDENCE_LINES:],
    }
