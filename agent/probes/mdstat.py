"""Linux software RAID from /proc/mdstat: degraded arrays, faulty members, rebuilds.

A rebuild (recovery, resync or reshape) running longer than ``limits.raid_rebuild_limit_s``
warns (``raid_rebuild_slow``): when each began is kept in the agent's durable state on the
wall clock, so an agent restart does not start the count again. Scheduled checks and
repairs are not rebuilds and are not timed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import Memo, ProbeContext, ProbeResult, component_id
from agent.root import Root

# "md6 : active raid1 sdb2[2](F) sdc[1](S) sda2[0]"
_HEAD = re.compile(r"^(md\w+)\s*:\s*(active|inactive)(?:\s+\([\w-]+\))?\s*(.*)$")
# "sdb2[2](F)": a member, its role number, and F (faulty), S (spare), W, R flags
_MEMBER = re.compile(r"^([\w.-]+)\[(\d+)\]((?:\([A-Z]\))*)$")
# "195310144 blocks [2/1] [U_]": devices wanted / devices working
_COUNTS = re.compile(r"\[(\d+)/(\d+)\]\s+\[([U_]+)\]")
# "[=>....]  recovery =  8.5% (16775552/195310144) finish=17.0min"
_SYNC = re.compile(r"\b(recovery|resync|check|reshape|repair)\s*=\s*([\d.]+)%")
#: The sync actions that mean the array is rebuilding redundancy (not a scheduled check).
REBUILDS = frozenset({"recovery", "resync", "reshape"})


@dataclass
class Array:
    """One md array as /proc/mdstat describes it."""

    name: str
    active: bool
    level: str | None = None
    members: list[str] = field(default_factory=list)
    faulty: list[str] = field(default_factory=list)
    spares: list[str] = field(default_factory=list)
    wanted: int | None = None
    working: int | None = None
    sync: tuple[str, float] | None = None


def parse(text: str) -> list[Array]:
    """The arrays of a /proc/mdstat text."""
    arrays: list[Array] = []
    for line in text.splitlines():
        head = _HEAD.match(line.strip())
        if head:
            arr = Array(head.group(1), head.group(2) == "active")
            for word in head.group(3).split():
                m = _MEMBER.match(word)
                if m is None:
                    if word.startswith(("raid", "linear", "multipath", "faulty")):
                        arr.level = word
                    continue
                arr.members.append(m.group(1))
                if "(F)" in m.group(3):
                    arr.faulty.append(m.group(1))
                elif "(S)" in m.group(3):
                    arr.spares.append(m.group(1))
            arrays.append(arr)
        elif arrays:
            if (c := _COUNTS.search(line)) is not None:
                arrays[-1].wanted, arrays[-1].working = int(c.group(1)), int(c.group(2))
            if (s := _SYNC.search(line)) is not None:
                arrays[-1].sync = (s.group(1), float(s.group(2)))
    return arrays


def judge(arr: Array) -> tuple[str, str | None, str | None]:
    """Status, failure and detail of one array."""
    degraded = arr.wanted is not None and arr.working is not None and arr.working < arr.wanted
    if degraded:
        return (
            "failed",
            "raid_degraded",
            f"{arr.working} of {arr.wanted} devices working; "
            f"faulty: {', '.join(arr.faulty) or '-'}",
        )
    if arr.faulty:
        # the array is whole, but a member the kernel kicked out still needs replacing
        return "warning", "raid_member_faulty", f"faulty: {', '.join(arr.faulty)}"
    if not arr.active and arr.level is not None:
        return "warning", "raid_inactive", "array is inactive"
    return "ok", None, None


class MdstatProbe:
    """Software RAID arrays."""

    name: ClassVar[str] = "mdstat"

    def __init__(self, ctx: ProbeContext) -> None:
        """The rebuild limit, the wall clock and where rebuild start times are kept."""
        self.limit_s = ctx.limits.raid_rebuild_limit_s
        self.wall = ctx.wall
        self.started = Memo(ctx.state, "mdstat")

    def _rebuild_for(self, arr: Array) -> float | None:
        """Seconds this array has been rebuilding (first seen by this agent), else None."""
        rebuilding = arr.sync is not None and arr.sync[0] in REBUILDS
        since = self.started.get(arr.name)
        if not rebuilding:
            if since is not None:
                self.started.put(arr.name, None)
            return None
        now = self.wall()
        if since is None:
            self.started.put(arr.name, now)
            return 0.0
        return now - float(since)

    def collect(self, root: Root) -> ProbeResult:
        """One raid component per array."""
        text = root.read_text("proc/mdstat")
        if not text:
            return ProbeResult()
        readings, states, inventory, evidence = [], [], [], {}
        for arr in parse(text):
            cid = component_id("raid", arr.name)
            if arr.wanted is not None and arr.working is not None:
                readings += [
                    Reading(cid, "md.disks_wanted", float(arr.wanted)),
                    Reading(cid, "md.disks_working", float(arr.working)),
                ]
            readings += [
                Reading(cid, "md.disks_faulty", float(len(arr.faulty))),
                Reading(cid, "md.disks_spare", float(len(arr.spares))),
            ]
            if arr.sync is not None:
                readings.append(Reading(cid, "md.sync_percent", arr.sync[1]))
            status, failure, detail = judge(arr)
            rebuild_s = self._rebuild_for(arr)
            if status == "ok" and arr.sync and rebuild_s is not None and rebuild_s >= self.limit_s:
                status, failure = "warning", "raid_rebuild_slow"
                detail = f"{arr.sync[0]} at {arr.sync[1]:g}% after {rebuild_s / 3600:.1f} h"
            states.append(
                ComponentState(cid, "raid", status, slot=arr.name, failure=failure, detail=detail)
            )
            inventory.append(
                Component(
                    cid,
                    "raid",
                    slot=arr.name,
                    device=f"/dev/{arr.name}",
                    attrs={"level": arr.level, "members": arr.members},
                )
            )
            evidence[cid] = {
                "source": "/proc/mdstat",
                "faulty": arr.faulty,
                "wanted": arr.wanted,
                "working": arr.working,
                "sync": list(arr.sync) if arr.sync else None,
                "rebuilding_for_s": rebuild_s,
            }
        return ProbeResult(tuple(readings), tuple(states), tuple(inventory), evidence)
