"""The smart probe's disks it cannot watch: why smartctl told nothing, the part as /sys
shows it, and the probe's status over all its disks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.messages import Component
from agent.probes.base import component_id
from agent.probes.coverage import (
    DENIED,
    NO_ANSWER,
    NO_DEVICES,
    PACKAGES,
    PERMISSION_DENIED,
    TOOL_MISSING,
    WORKING,
    Coverage,
    missing_tool,
    worst,
)
from agent.root import Root


def unanswered(root: Root, got: tuple[Mapping[str, Any], int] | str | None) -> tuple[str, str]:
    """Why smartctl told nothing usable about a disk: (coverage status, the reason)."""
    if not root.has_tool("smartctl"):
        return TOOL_MISSING, missing_tool("smartctl")
    said = ""
    if isinstance(got, tuple):
        said = "; ".join(str(m.get("string", "")) for m in
                         got[0].get("smartctl", {}).get("messages", []) if isinstance(m, dict))
    if any(w in said for w in DENIED) or not root.privileged():
        return PERMISSION_DENIED, f"smartctl may not open the disk: {said or 'not root'}"
    return NO_ANSWER, f"smartctl gave no identity or health: {said or 'no output'}"


def unwatched(root: Root, dev: str, status: str, why: str) -> Component:
    """A disk seen in /sys that smartctl does not answer for: in the inventory, unwatched."""
    # an NVMe controller's identity is in its class directory, a SATA/SAS disk's in its device
    where = f"sys/class/nvme/{dev}" if dev.startswith("nvme") else f"sys/block/{dev}/device"
    serial = (root.read_text(f"{where}/serial") or "").strip() or None
    model = (root.read_text(f"{where}/model") or "").strip() or None
    return Component(component_id("disk", serial or dev), "disk", slot=dev, device=f"/dev/{dev}",
                     model=model, serial=serial, coverage={"status": status, "detail": why})


def summary(devs: list[str], blind: Mapping[str, tuple[str, str]]) -> Coverage:
    """The probe's status: its worst disk's, naming the disks it cannot watch."""
    if not devs:
        return Coverage("smart", NO_DEVICES, "no SATA, SAS or NVMe disk under /sys/block")
    status = worst(blind[d][0] if d in blind else WORKING for d in devs)
    names = [d for d in devs if d in blind]
    if not names:
        verb = "disks answer" if len(devs) > 1 else "disk answers"
        return Coverage("smart", WORKING, f"{len(devs)} {verb}")
    why = "smartctl not found" if status == TOOL_MISSING else blind[names[0]][1]
    detail = f"{len(names)} of {len(devs)} disks unwatched ({', '.join(names)}): {why}"
    return Coverage("smart", status, detail,
                    PACKAGES["smartctl"] if status == TOOL_MISSING else None)
