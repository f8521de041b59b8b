"""Disks through ``smartctl --json -x``: SATA, SAS and NVMe health, wear and error counters.

smartctl's exit status is a bit mask (smartctl(8)): bit 3 means the drive's own health
check says it is failing, bit 4 that a pre-failure attribute is at or below threshold,
bit 6 that the error log has entries. SMART is slow and wakes disks, so each disk is
read once every ``smart_interval_s``, staggered (disk k of n at k/n of the interval, so
not all disks are queried at once), with ``-n standby`` (a sleeping disk answers exit
status 2 and "STANDBY": it is skipped this round, never woken); the last answer of each
disk is reported in between. The first collection reads every disk, so a disk already
failed at start produces its event at once.

Counters that predict a failure are judged against a per-serial baseline kept in the
agent's durable state (the first value seen is the baseline): ATA 5/187/197/198 above
it warn (``smart_counter_rising``), 188 above it warns (``smart_command_timeouts``), NVMe
media_errors above it fail (``nvme_media_errors``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import Limits, Memo, ProbeContext, ProbeResult, component_id
from agent.probes.smart_blind import summary, unanswered, unwatched
from agent.root import Root

EXIT_FAILING = 1 << 3  # "SMART status check returned DISK FAILING"
EXIT_PREFAIL = 1 << 4  # "some prefail Attributes <= threshold"
EXIT_NO_DEVICE = (1 << 0) | (1 << 1)  # bad command line, or the device did not open
EXIT_OPEN_FAILED = 1 << 1  # "device open failed" -- also how -n standby skips a disk
#: ATA attributes whose raw value counts damage: reallocated (5), reported uncorrectable
#: (187), command timeouts (188), pending (197) and offline uncorrectable (198) sectors,
#: interface CRC errors (199).
ATA_ATTRS = (5, 187, 188, 197, 198, 199)
#: Raw counts that predict a failure when above this serial's baseline: reallocated (5),
#: reported uncorrectable (187), pending (197), offline uncorrectable (198) sectors.
RISING_ATTRS = (5, 187, 197, 198)
#: Command timeouts (188): a jump above the baseline is a cable, backplane or drive fault.
TIMEOUT_ATTR = 188
#: NVMe self-test results that mean the test failed (NVMe base spec, Get Log Page 06h):
#: 5 fatal or unknown error, 6 a segment failed (unknown which), 7 segments failed.
NVME_SELFTEST_FAILED = frozenset({5, 6, 7})
# leading integer of a raw string: "26 (Min/Max 25/32)", "12523h+17m+08.635s", "4"
_LEADING_INT = re.compile(r"^\s*(\d+)")


class SmartProbe:
    """SMART health of every disk, each re-read every smart_interval_s, staggered."""

    name: ClassVar[str] = "smart"

    def __init__(self, ctx: ProbeContext) -> None:
        """Keep the interval, the clock, the limits and the baselines; nothing read yet."""
        self.interval_s = ctx.smart_interval_s
        self.monotonic = ctx.monotonic
        self.limits = ctx.limits
        self.baselines = Memo(ctx.state, "smart")
        self._results: dict[str, ProbeResult] = {}  # device -> its last answer
        self._due: dict[str, float] = {}  # device -> when it is read next
        self._merged: ProbeResult | None = None
        self._blind: dict[str, tuple[str, str]] = {}  # device -> (status, why) unanswered

    def collect(self, root: Root) -> ProbeResult:
        """Every disk's last answer, reading the disks that are due."""
        now = self.monotonic()
        devs = devices(root)
        changed = self._merged is None or any(d not in devs for d in self._results)
        for gone in [d for d in self._results if d not in devs]:
            del self._results[gone]
        for gone in [d for d in self._blind if d not in devs]:
            del self._blind[gone]
        for k, dev in enumerate(devs):
            due = self._due.get(dev)
            if due is not None and now < due:
                continue
            # first look: now; then disk k of n at k/n of the interval, every interval
            step = self.interval_s
            nxt = now + step * (1 + k / len(devs)) if due is None else due + step
            self._due[dev] = max(nxt, now + self.interval_s / 2)  # never a burst after a stall
            got = read_device(root, dev)
            if got == STANDBY:
                continue  # asleep: keep its last answer, try again next round
            changed = True
            result = self._judge(dev, got) if isinstance(got, tuple) else None
            if result is None:
                self._results.pop(dev, None)
                self._blind[dev] = unanswered(root, got)
            else:
                self._results[dev] = result
                self._blind.pop(dev, None)
        if changed or self._merged is None:
            merged = ProbeResult.merge(self._results[d] for d in devs if d in self._results)
            blind = tuple(unwatched(root, d, *self._blind[d]) for d in devs if d in self._blind)
            self._merged = ProbeResult(
                merged.readings, merged.states, merged.inventory + blind, merged.evidence,
                (summary(devs, self._blind),))
        return self._merged

    def _judge(self, dev: str, got: tuple[Mapping[str, Any], int]) -> ProbeResult | None:
        """Interpret one disk against its serial's baseline, and keep the baseline."""
        data, exit_status = got
        serial = str(data.get("serial_number") or "").strip()
        saved = (self.baselines.get(serial) or {}) if serial else {}
        result = interpret(dev, data, exit_status, saved, self.limits)
        if result is not None and serial:
            seen = baseline_of(result)
            # the first value seen is the baseline; a counter that went down moves it down
            self.baselines.put(serial, {k: min(v, saved.get(k, v)) for k, v in seen.items()})
        return result


def devices(root: Root) -> list[str]:
    """Disk names to ask smartctl about: those in /sys/block and, in replay, those recorded."""
    out: list[str] = list(root.cmd_targets("smartctl") or [])
    for name in root.listdir("sys/block"):
        if not root.exists(f"sys/block/{name}/device"):
            continue  # loop, dm, md, zram: not physical disks
        m = re.match(r"^(nvme\d+)n\d+$", name)  # namespace nvme0n1 -> controller nvme0
        dev = m.group(1) if m else name
        if (m or re.match(r"^(sd[a-z]+|hd[a-z]+)$", name)) and dev not in out:
            out.append(dev)
    return out


#: What read_device answers for a disk in standby: skipped, keep its last answer.
STANDBY = "standby"


def smartctl_args(dev: str) -> list[str]:
    """smartctl's arguments for one disk; ``-n standby`` where smartctl honours it (not NVMe)."""
    power = [] if dev.startswith("nvme") else ["-n", "standby"]
    return ["--json", "-x", *power, f"/dev/{dev}"]


def read_device(root: Root, dev: str) -> tuple[Mapping[str, Any], int] | str | None:
    """smartctl's JSON and exit status of one disk, STANDBY for a sleeping one, else None."""
    done = root.cmd_output("smartctl", smartctl_args(dev))
    if done is None:
        return None
    if done.exit_status & EXIT_OPEN_FAILED and "STANDBY" in done.stdout.upper():
        return STANDBY  # "Device is in STANDBY mode, exit(2)": not woken, skipped
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return data, done.exit_status


def interpret(
    slot: str,
    data: Mapping[str, Any],
    exit_status: int,
    baseline: Mapping[str, int] | None = None,
    limits: Limits | None = None,
) -> ProbeResult | None:
    """Readings, state, inventory and evidence from one smartctl JSON document.

    ``baseline`` holds this serial's first-seen counters (``attr_5``, ``media_errors``...);
    without it nothing counts as rising.
    """
    limits = limits or Limits()
    baseline = baseline or {}
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
    selftest = selftest_failed(data)
    if selftest is not None:
        readings.append(Reading(cid, "smart.selftest_failed", 1.0 if selftest else 0.0))
        if selftest:
            problems.append(("failed", "selftest_failed", f"last self-test: {selftest}"))
    if protocol == "NVMe":
        _nvme(cid, data, readings, problems, baseline, limits)
    elif protocol == "SCSI":
        _scsi(cid, data, readings, problems)
    else:
        _ata(cid, data, readings, problems, baseline)
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
    cid: str,
    data: Mapping[str, Any],
    out: list[Reading],
    problems: list[tuple[str, str, str]],
    baseline: Mapping[str, int],
) -> None:
    """ATA attributes 5, 187, 188, 197, 198, 199 raw counts, judged against the baseline."""
    table = data.get("ata_smart_attributes", {}).get("table", [])
    for attr in table:
        if attr.get("id") not in ATA_ATTRS or (value := raw_count(attr)) is None:
            continue
        out.append(Reading(cid, f"smart.attr_{attr['id']}_raw", float(value)))
        base = baseline.get(f"attr_{attr['id']}")
        if base is None or value <= base:
            continue
        name = attr.get("name", attr["id"])
        if attr["id"] in RISING_ATTRS:
            problems.append(
                ("warning", "smart_counter_rising", f"{name} raw {value}, was {base}")
            )
        elif attr["id"] == TIMEOUT_ATTR:
            problems.append(
                ("warning", "smart_command_timeouts", f"{name} raw {value}, was {base}")
            )


def selftest_failed(data: Mapping[str, Any]) -> str | None | bool:
    """The last self-test's failure text, False when it passed, None without a log."""
    ata = data.get("ata_smart_self_test_log", {})
    for kind in ("extended", "standard"):  # extended holds the newest on large logs
        table = ata.get(kind, {}).get("table") or []
        if table:
            status = table[0].get("status", {})  # smartctl lists the newest test first
            text = str(status.get("string", ""))
            failed = status.get("passed") is False or "failure" in text.lower()
            return text or "failed" if failed else False
    nvme = data.get("nvme_self_test_log", {}).get("table") or []
    if nvme:
        result = nvme[0].get("self_test_result", {})
        if result.get("value") in NVME_SELFTEST_FAILED:
            return str(result.get("string") or f"result {result.get('value')}")
        return False
    return None


def _nvme(
    cid: str,
    data: Mapping[str, Any],
    out: list[Reading],
    problems: list[tuple[str, str, str]],
    baseline: Mapping[str, int],
    limits: Limits,
) -> None:
    """NVMe health log: critical warning bits, media errors, spare and wear."""
    log = data.get("nvme_smart_health_information_log", {})
    for key in (
        "critical_warning",
        "media_errors",
        "available_spare",
        "available_spare_threshold",
        "percentage_used",
        "num_err_log_entries",
        "unsafe_shutdowns",
    ):
        if isinstance(log.get(key), int):
            out.append(Reading(cid, f"smart.{key}", float(log[key])))
    warning = int(log.get("critical_warning") or 0)
    if warning:
        # any bit: spare low (0), temperature (1), reliability (2), read-only (3), backup (4)
        problems.append(
            ("failed", "nvme_critical_warning", f"NVMe critical warning 0x{warning:02x}")
        )
    media = log.get("media_errors")
    base = baseline.get("media_errors")
    if isinstance(media, int) and base is not None and media > base:
        problems.append(("failed", "nvme_media_errors", f"{media} media errors, was {base}"))
    spare = log.get("available_spare")
    floor = log.get("available_spare_threshold")
    floor = floor if isinstance(floor, int) and floor > 0 else limits.nvme_spare_threshold
    if isinstance(spare, int) and spare < floor:
        problems.append(("warning", "nvme_spare_low", f"available spare {spare}% < {floor}%"))
    used = log.get("percentage_used")
    if isinstance(used, int) and used >= limits.nvme_wear_percent:
        problems.append(("warning", "nvme_wear", f"{used}% of rated life used"))


def baseline_of(result: ProbeResult) -> dict[str, int]:
    """The counters of a result a baseline keeps (attr_5 ... attr_198, media_errors)."""
    keys = {f"smart.attr_{a}_raw": f"attr_{a}" for a in (*RISING_ATTRS, TIMEOUT_ATTR)}
    keys["smart.media_errors"] = "media_errors"
    return {keys[r.metric]: int(r.value) for r in result.readings if r.metric in keys}


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
