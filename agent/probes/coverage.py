"""What a probe can watch on this host: its status, why, and the package that would fix it.

Mirrors schemas/coverage.py (the agent imports nothing outside agent/; a test keeps the
two in step). A probe that cannot run its tool must say so: a disk smartctl never answers
for is a disk whose failure can never open an incident.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

WORKING = "working"
TOOL_MISSING = "tool_missing"
PERMISSION_DENIED = "permission_denied"
NO_DEVICES = "no_devices"
NO_ANSWER = "no_answer"
STATUSES = (WORKING, TOOL_MISSING, PERMISSION_DENIED, NO_DEVICES, NO_ANSWER)
#: Worst first: the probe's status is its worst part's.
_RANK = (TOOL_MISSING, PERMISSION_DENIED, NO_ANSWER, WORKING, NO_DEVICES)
#: The Debian/RPM package of each tool a probe runs.
PACKAGES = {"smartctl": "smartmontools", "ipmitool": "ipmitool"}
#: smartctl's words when the disk would not open for this user (its JSON "messages").
DENIED = ("Permission denied", "Operation not permitted")


@dataclass(frozen=True)
class Coverage:
    """One probe's status on this host."""

    probe: str
    status: str
    detail: str = ""
    package: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The birth's `probes[]` item."""
        out: dict[str, Any] = {"probe": self.probe, "status": self.status}
        if self.detail:
            out["detail"] = self.detail[:500]
        if self.package:
            out["package"] = self.package
        return out


def worst(statuses: Iterable[str]) -> str:
    """The status that matters most of several (no_devices when there are none)."""
    found = set(statuses)
    return next((s for s in _RANK if s in found), NO_DEVICES)


def missing_tool(tool: str) -> str:
    """The sentence for a tool that is not installed."""
    return f"{tool} not found: install {PACKAGES.get(tool, tool)}"
