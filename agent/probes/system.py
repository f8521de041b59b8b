"""The host itself: CPU, load, memory, filesystems and the CPU packages' inventory.

Network ports are the ``nic`` probe's, fans and temperatures the ``hwmon`` probe's.

Everything is parsed from /proc and /sys through the Root, so a replay root gives the same
numbers as the live host did. psutil is used only where no file holds the figure: the
usage of a mounted filesystem (statvfs), which a replay root cannot have.
"""

from __future__ import annotations

import re
from typing import ClassVar

import psutil

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.root import Root

#: A filesystem this full is a warning: writes are about to fail.
FS_FULL_PERCENT = 95.0
#: Filesystem types that are not storage to watch (read-only images).
_SKIP_FS = frozenset({"squashfs", "iso9660", "udf"})


class SystemProbe:
    """Host-level readings and the CPU inventory."""

    name: ClassVar[str] = "system"

    def __init__(self, ctx: ProbeContext) -> None:
        """Remember the host; CPU percent needs the previous /proc/stat sample."""
        self.host_id = component_id("host", ctx.host)
        self._last_cpu: tuple[int, int] | None = None

    def collect(self, root: Root) -> ProbeResult:
        """Collect host and filesystem readings and the CPU inventory."""
        return ProbeResult.merge(
            [
                self._host(root),
                filesystems(root),
                ProbeResult(inventory=cpus(root)),
            ]
        )

    def _host(self, root: Root) -> ProbeResult:
        """Load, memory and CPU busy percent of the whole host."""
        readings: list[Reading] = []
        add = readings.append
        load = (root.read_text("proc/loadavg") or "").split()
        # "0.04 0.06 0.04 2/139 13732": 1, 5 and 15 minute load averages first
        for metric, text in zip(("load.1m", "load.5m", "load.15m"), load[:3], strict=False):
            add(Reading(self.host_id, metric, float(text)))
        mem = meminfo(root)
        if "MemTotal" in mem:
            total = mem["MemTotal"]
            avail = mem.get("MemAvailable", mem.get("MemFree", 0))
            add(Reading(self.host_id, "mem.total_bytes", float(total)))
            add(Reading(self.host_id, "mem.available_bytes", float(avail)))
            if total:
                add(Reading(self.host_id, "mem.used_percent", round(100 * (1 - avail / total), 2)))
        cpu = self._cpu_percent(root)
        if cpu is not None:
            add(Reading(self.host_id, "cpu.percent", cpu))
        return ProbeResult(readings=tuple(readings))

    def _cpu_percent(self, root: Root) -> float | None:
        """Busy percent since the previous collection (since boot on the first)."""
        sample = cpu_times(root)
        if sample is None:
            return None
        prev = self._last_cpu or (0, 0)
        self._last_cpu = sample
        total, idle = sample[0] - prev[0], sample[1] - prev[1]
        return round(100 * (total - idle) / total, 2) if total > 0 else None


def meminfo(root: Root) -> dict[str, int]:
    """/proc/meminfo in bytes, e.g. {"MemTotal": 16384000000}."""
    out = {}
    for line in (root.read_text("proc/meminfo") or "").splitlines():
        # "MemTotal:       16077220 kB"
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?$", line.strip())
        if m:
            scale = 1024 if line.rstrip().endswith("kB") else 1
            out[m.group(1)] = int(m.group(2)) * scale
    return out


def cpu_times(root: Root) -> tuple[int, int] | None:
    """(total, idle+iowait) jiffies from the first line of /proc/stat."""
    for line in (root.read_text("proc/stat") or "").splitlines():
        # "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 0 0"
        if line.startswith("cpu "):
            fields = [int(v) for v in line.split()[1:]]
            # guest and guest_nice (fields 9, 10) are already counted in user and nice
            return sum(fields[:8]), sum(fields[3:5])
    return None


def cpus(root: Root) -> tuple[Component, ...]:
    """One cpu component per physical package, from /proc/cpuinfo."""
    packages: dict[str, dict[str, str | int]] = {}
    for block in (root.read_text("proc/cpuinfo") or "").split("\n\n"):
        info = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if "processor" not in info:
            continue
        pkg = packages.setdefault(info.get("physical id", "0"), {"threads": 0})
        pkg["threads"] = int(pkg["threads"]) + 1
        pkg.setdefault("model", info.get("model name", ""))
        if info.get("cpu cores", "").isdigit():
            pkg["cores"] = int(info["cpu cores"])
    return tuple(
        Component(
            component_id("cpu", pid),
            "cpu",
            slot=f"package{pid}",
            model=str(p.pop("model")) or None,
            attrs=p,
        )
        for pid, p in sorted(packages.items())
    )


def filesystems(root: Root) -> ProbeResult:
    """Usage of each mounted block-device filesystem (live only: it needs statvfs)."""
    if not root.live:
        return ProbeResult()
    readings, states = [], []
    seen = set()
    for line in (root.read_text("proc/mounts") or "").splitlines():
        # "/dev/sda1 / ext4 rw,relatime 0 0"
        fields = line.split()
        if len(fields) < 3 or not fields[0].startswith("/dev/") or fields[2] in _SKIP_FS:
            continue
        device, mount = fields[0], fields[1].replace("\\040", " ")
        if device in seen:
            continue
        seen.add(device)
        try:
            usage = psutil.disk_usage(mount)
        except OSError:
            continue
        cid = component_id("fs", "root" if mount == "/" else mount.strip("/"))
        readings += [
            Reading(cid, "fs.size_bytes", float(usage.total)),
            Reading(cid, "fs.free_bytes", float(usage.free)),
            Reading(cid, "fs.used_percent", float(usage.percent)),
        ]
        full = usage.percent >= FS_FULL_PERCENT
        states.append(
            ComponentState(
                cid,
                "fs",
                "warning" if full else "ok",
                slot=mount,
                failure="fs_full" if full else None,
                detail=f"{usage.percent:g}% used" if full else None,
            )
        )
    return ProbeResult(readings=tuple(readings), states=tuple(states))


def chassis(root: Root) -> dict[str, str | None]:
    """Chassis vendor, model and serial from DMI (the serial is readable by root only)."""

    def dmi(attr: str) -> str | None:
        text = (root.read_text(f"sys/class/dmi/id/{attr}") or "").strip()
        return text or None

    return {
        "vendor": dmi("sys_vendor"),
        "model": dmi("product_name"),
        "serial": dmi("product_serial"),
    }


def boot_id(root: Root) -> str:
    """The kernel's boot id, or "unknown" when the root has none."""
    return (root.read_text("proc/sys/kernel/random/boot_id") or "").strip() or "unknown"
