"""CPU machine checks from rasdaemon's ``mce_record`` table, per CPU package.

An uncorrected machine check (MCi_STATUS UC) within the window fails the package
(``mce_fatal``); corrected ones are counted (``mce.corrected_count``, cumulative: rasdaemon
keeps its records across reboots), and ``limits.mce_corrected_threshold`` or more on one
bank within ``limits.ecc_window_s`` predict a failure (``mce_corrected_repeated``). The
component is ``cpu:<socket>``, the same id as the CPU package in the birth inventory.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from agent.messages import ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.probes.rasdaemon import MceRecord, mce_records
from agent.probes.rasdaemon import database as ras_database
from agent.root import Root


class MceProbe:
    """Machine checks per CPU package, read incrementally from rasdaemon's database."""

    name: ClassVar[str] = "mce"

    def __init__(self, ctx: ProbeContext) -> None:
        """Keep the limits and the wall clock; nothing read yet."""
        self.limits, self.wall = ctx.limits, ctx.wall
        self._last_id = 0
        self._corrected: Counter[int] = Counter()  # socket -> corrected records, all time
        self._recent: list[MceRecord] = []  # records within the window

    def collect(self, root: Root) -> ProbeResult:
        """One cpu component per package rasdaemon has recorded a machine check on."""
        path = ras_database(root)
        if path is None:
            return ProbeResult()
        new = mce_records(path, self._last_id)
        if new:
            self._last_id = new[-1].id
        for r in new:
            self._corrected[r.socket] += 0 if r.uncorrected else 1
        since = self.wall() - self.limits.ecc_window_s
        self._recent = [r for r in [*self._recent, *new] if r.at is not None and r.at >= since]
        return ProbeResult.merge(self._package(s) for s in sorted(self._corrected))

    def _package(self, socket: int) -> ProbeResult:
        """Reading, state and evidence of one CPU package."""
        cid = component_id("cpu", str(socket))
        recent = [r for r in self._recent if r.socket == socket]
        banks = Counter(r.bank for r in recent if not r.uncorrected)
        fatal = [r for r in recent if r.uncorrected]
        status, failure, detail = "ok", None, None
        if fatal:
            last = fatal[-1]
            status, failure = "failed", "mce_fatal"
            detail = (
                f"uncorrected machine check on cpu {last.cpu} bank {last.bank}"
                f" ({last.bank_name or 'unknown bank'})"
                + (", processor context corrupt" if last.context_corrupt else "")
            )
        elif banks and (worst := banks.most_common(1)[0])[1] >= self.limits.mce_corrected_threshold:
            name = next((r.bank_name for r in recent if r.bank == worst[0]), "")
            status, failure = "warning", "mce_corrected_repeated"
            hours = self.limits.ecc_window_s / 3600
            detail = (
                f"{worst[1]} corrected machine checks on bank {worst[0]} ({name}) in {hours:g} h"
            )
        state = ComponentState(
            cid, "cpu", status, slot=f"package{socket}", failure=failure, detail=detail
        )
        evidence = {
            "source": "rasdaemon",
            "corrected_by_bank_in_window": {str(b): n for b, n in sorted(banks.items())},
            "uncorrected_in_window": len(fatal),
            "last_status": f"0x{fatal[-1].status:016x}" if fatal else None,
            "window_s": self.limits.ecc_window_s,
        }
        return ProbeResult(
            readings=(Reading(cid, "mce.corrected_count", float(self._corrected[socket])),),
            states=(state,),
            evidence={cid: evidence},
        )
