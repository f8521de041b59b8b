"""Disks through ``smartctl --json -x``: SATA, SAS and NVMe health, wear and error counters.

smartctl's exit status is a bit mask (smartctl(8)): bit 3 means the drive's own health
check says it is failing, bit 4 that a pre-failure attribute is at or below threshold,
bit 6 that the error log has entries. SMART is slow and wakes disks, so it runs every
``smart_interval_s`` and its last answer is reported in between.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.root import Root

EXIT_FAILING = 1 << 3  # "SMART status check returned DISK FAILING"
EXIT_PREFAIL = 1 << 4  # "some prefail Attributes <= threshold"
EXIT_NO_DEVICE = (1 << 0) | (1 << 1)  # bad command line, or the device did not open
#: ATA attributes whose raw value counts damage: reallocated (5), reported uncorrectable
#: (187), command timeouts (188), pending (197) and offline uncorrectable (198) sectors,
#: interface CRC errors (199).
ATA_ATTRS = (5, 187, 188, 197, 198, 199)
#: Raw counts above zero that predict a failure (warning, not yet failed).
_ATA_WARN = {5: "reallocated_sectors", 197: "pending_sectors", 198: "offline_uncorrectable"}
#: NVMe critical_warning bits that mean the drive is failing: spare below threshold (0),
#: reliability degraded (2), read-only (3), volatile backup failed (4). Bit 1 is temperature.
NVME_FATAL_BITS = 0x01 | 0x04 | 0x08 | 0x10
NVME_TEMP_BIT = 0x02
# leading integer of a raw string: "26 (Min/Max 25/32)", "12523h+17m+08.635s", "4"
_LEADING_INT = re.compile(r"^\s*(\d+)")


class SmartProbe:
    """SMART health of every disk, re-read every smart_interval_s."""

    name: ClassVar[str] = "smart"

    def __init__(self, ctx: ProbeContext) -> None:
        """Keep the interval and the clock; nothing is cached yet."""
        self.interval_s = ctx.smart_interval_s
        self.monotonic = ctx.monotonic
        self._last: ProbeResult | None = None
        self._last_at = 0.0

    def collect(self, root: Root) -> ProbeResult:
        """The SMART result, refreshed when older than smart_interval_s."""
        now = self.monotonic()
        if self._last is None or now - self._last_at >= self.interval_s:
            self._last = ProbeResult.merge(
                r for dev in devices(root) if (r := read_device(root, dev)) is not None
            )
            self._last_at = now
        return self._last


def devices(root: Root) -> list[str]:
    """Disk names to ask smartctl about: recorded ones in replay, else from /sys/block."""
    recorded = root.cmd_targets("smartctl")
    if recorded is not None:
        return recorded
    out: list[str] = []
    for name in root.listdir("sys/block"):
        if not root.exists(f"sys/block/{name}/device"):
            continue  # loop, dm, md, zram: not physical disks
        m = re.match(r"^(nvme\d+)n\d+$", name)  # namespace nvme0n1 -> controller nvme0
        dev = m.group(1) if m else name
        if (m or re.match(r"^(sd[a-z]+|hd[a-z]+)$", name)) and dev not in out:
            out.append(dev)
    return out


def read_device(root: Root, dev: str) -> ProbeResult | None:
    """Run (or replay) smartctl for one device and interpret it."""
    done = root.cmd_output("smartctl", ["--json", "-x", f"/dev/{dev}"])
    if done is None:
        return None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return interpret(dev, data, done.exit_status)


def interpret(slot: str, data: Mapping[str, Any], exit_status: int) -> ProbeResult | None:
    """Readings, state, inventory and evidence from one smartctl JSON document."""
    serial = str(data.get("serial_number") or "").strip() or None
    if serial is None or exit_status & EXIT_NO_DEVICE and "smart_status" not in data:
        return None  # nothing identifies the disk: no component to report
    cid = component_id("disk", serial)
    protocol = str(data.get("device", {}).get("protocol", "")) or None
    readings = _common_readings(cid, data, exit_status)
    problems: list[tuple[str, str, str]] = []  # (status, failure, detail)
    passed = data.get("smart_status", {}).get("passed")
    if passed is False or exit_status & EXIT_FAILING:
        problems.append(("failed", "smart_failed", "SMART overall-health self-assessment: FAILED"))
    if exit_status & EXIT_PREFAIL:
        problems.append(
            ("warning", "prefail_threshold", "a pre-failure attribute is at or below its threshold")
        )
    if protocol == "NVMe":
        _nvme(cid, data, readings, problems)
    elif protocol == "SCSI":
        _scsi(cid, data, readings, problems)
    else:
        _ata(cid, data, readings, problems)
    worst = next((p for p in problems if p[0] == "failed"), problems[0] if problems else None)
    state = ComponentState(
        cid,
        "disk",
        worst[0] if worst else "ok",
        slot=slot,
        serial=serial,
        failure=worst[1] if worst else None,
        detail="; ".join(p[2] for p in problems)[:1024] if problems else None,
    )
    evidence = {
        "tool": "smartctl",
        "device": f"/dev/{slot}",
        "smart_status_passed": passed,
        "exit_status": exit_status,
        "readings": {r.metric: r.value for r in readings},
    }
    return ProbeResult(
        readings=tuple(readings),
        states=(state,),
        inventory=(_inventory(cid, slot, serial, protocol, data),),
        evidence={cid: evidence},
    )


def _common_readings(cid: str, data: Mapping[str, Any], exit_status: int) -> list[Reading]:
    """Temperature, power-on hours and the exit status, whatever the protocol."""
    out = [Reading(cid, "smart.exit_status", float(exit_status))]
    temp = data.get("temperature", {}).get("current")
    if isinstance(temp, int | float):
        out.append(Reading(cid, "smart.temperature_c", float(temp)))
    hours = data.get("power_on_time", {}).get("hours")
    if isinstance(hours, int | float):
        out.append(Reading(cid, "smart.power_on_hours", float(hours)))
    return out


def raw_count(attr: Mapping[str, Any]) -> int | None:
    """The count an ATA attribute's raw value holds, read from its raw string."""
    raw = attr.get("raw", {})
    m = _LEADING_INT.match(str(raw.get("string", "")))
    value = int(m.group(1)) if m else raw.get("value")
    if not isinstance(value, int):
        return None
    if attr.get("id") == 188 and value > 0xFFFF:
        # Seagate packs three 16-bit timeout counters into 188's raw value
        # ("51540393996" is 12, 12, 12); the low word is the total count.
        return value & 0xFFFF
    return value


def _ata(
    cid: str, data: Mapping[str, Any], out: list[Reading], problems: list[tuple[str, str, str]]
) -> None:
    """ATA attributes 5, 187, 188, 197, 198, 199 raw counts."""
    table = data.get("ata_smart_attributes", {}).get("table", [])
    for attr in table:
        if attr.get("id") in ATA_ATTRS and (value := raw_count(attr)) is not None:
            out.append(Reading(cid, f"smart.attr_{attr['id']}_raw", float(value)))
            if value > 0 and attr["id"] in _ATA_WARN:
                problems.append(
                    (
                        "warning",
                        _ATA_WARN[attr["id"]],
                        f"{attr.get('name', attr['id'])} raw {value}",
                    )
                )


def _nvme(
    cid: str, data: Mapping[str, Any], out: list[Reading], problems: list[tuple[str, str, str]]
) -> None:
    """NVMe health log: critical warning bits, media errors, spare and wear."""
    log = data.get("nvme_smart_health_information_log", {})
    for key in (
        "critical_warning",
        "media_errors",
        "available_spare",
        "percentage_used",
        "num_err_log_entries",
        "unsafe_shutdowns",
    ):
        if isinstance(log.get(key), int):
            out.append(Reading(cid, f"smart.{key}", float(log[key])))
    warning = int(log.get("critical_warning") or 0)
    if warning & NVME_FATAL_BITS:
        problems.append(("failed", "smart_failed", f"NVMe critical warning 0x{warning:02x}"))
    elif warning & NVME_TEMP_BIT:
        problems.append(("warning", "over_temperature", "NVMe temperature warning"))
    if int(log.get("media_errors") or 0) > 0:
        problems.append(("warning", "media_errors", f"{log['media_errors']} media errors"))
    if int(log.get("percentage_used") or 0) >= 100:
        problems.append(("warning", "wear_out", f"{log['percentage_used']}% of rated life used"))


def _scsi(
    cid: str, data: Mapping[str, Any], out: list[Reading], problems: list[tuple[str, str, str]]
) -> None:
    """SAS/SCSI grown defect list and uncorrected read/write errors."""
    defects = data.get("scsi_grown_defect_list")
    if isinstance(defects, int):
        out.append(Reading(cid, "smart.grown_defects", float(defects)))
        if defects > 0:
            problems.append(("warning", "grown_defects", f"{defects} grown defects"))
    errors = data.get("scsi_error_counter_log", {})
    for op in ("read", "write"):
        value = errors.get(op, {}).get("total_uncorrected_errors")
        if isinstance(value, int):
            out.append(Reading(cid, f"smart.{op}_uncorrected_errors", float(value)))


def _inventory(
    cid: str, slot: str, serial: str, protocol: str | None, data: Mapping[str, Any]
) -> Component:
    """The birth inventory entry of a disk."""
    model = (
        data.get("model_name")
        or data.get("scsi_model_name")
        or " ".join(str(data[k]) for k in ("scsi_vendor", "scsi_product") if data.get(k))
    )
    size = data.get("user_capacity", {}).get("bytes")
    attrs = {
        k: v
        for k, v in (
            ("protocol", protocol),
            ("firmware", data.get("firmware_version")),
            ("rotation_rate", data.get("rotation_rate")),
        )
        if v is not None
    }
    return Component(
        cid,
        "disk",
        slot=slot,
        device=f"/dev/{slot}",
        model=str(model) or None,
        serial=serial,
        size_bytes=size if isinstance(size, int) else None,
        attrs=attrs,
    )
