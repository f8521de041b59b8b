"""Memory errors from the kernel's EDAC counters (/sys/devices/system/edac/mc) and rasdaemon.

Two sysfs layouts exist: the newer ``mcN/dimmN/`` (dimm_label, dimm_ce_count,
dimm_ue_count) and the older ``mcN/csrowN/`` (chN_dimm_label, chN_ce_count, and per-row
ue_count). The kernel's counters restart at every boot, so the probe keeps a per-DIMM
offset in the agent's durable state and reports counts that survive reboots. A DIMM
fails on an uncorrectable error (this boot, or in rasdaemon's records within the window);
correctable errors at or above ``limits.ecc_ce_threshold`` within ``limits.ecc_window_s``
predict a failure (``ecc_correctable_rate``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import Memo, ProbeContext, ProbeResult, component_id
from agent.probes.rasdaemon import McEvent, mc_events
from agent.probes.rasdaemon import database as ras_database
from agent.probes.system import boot_id
from agent.root import Root

EDAC = "sys/devices/system/edac/mc"
#: Correctable errors are counted in 15-minute buckets: a day is at most 96 small numbers
#: in the durable state, and the window is exact to within a quarter of an hour.
BUCKET_S = 900


@dataclass(frozen=True)
class DimmCount:
    """What the kernel counts for one DIMM since boot."""

    label: str
    ce: int | None
    ue: int | None
    detail: str | None = None  # why a UE is blamed on this DIMM when the row is shared
    size_bytes: int | None = None


def sysfs_dimms(root: Root) -> tuple[list[DimmCount], dict[str, int]]:
    """Every DIMM of both layouts, and the per-controller counts no DIMM can be blamed for."""
    dimms: list[DimmCount] = []
    noinfo: dict[str, int] = {}
    for mc in root.listdir(EDAC):
        if not re.fullmatch(r"mc\d+", mc):
            continue
        base = f"{EDAC}/{mc}"
        for metric in ("ue_noinfo_count", "ce_noinfo_count"):
            value = root.read_int(f"{base}/{metric}")
            if value is not None:
                noinfo[f"edac.{mc}.{metric.removesuffix('_count')}"] = value
        for entry in root.listdir(base):
            if re.fullmatch(r"(dimm|rank)\d+", entry):
                dimms.append(_dimm(root, f"{base}/{entry}", mc, entry))
            elif re.fullmatch(r"csrow\d+", entry):
                dimms += _csrow(root, f"{base}/{entry}", mc, entry)
    return dimms, noinfo


def _dimm(root: Root, base: str, mc: str, entry: str) -> DimmCount:
    """A DIMM of the newer layout, with its own counters."""
    label = (root.read_text(f"{base}/dimm_label") or "").strip() or f"{mc}-{entry}"
    size_mb = root.read_int(f"{base}/size")
    return DimmCount(
        label,
        root.read_int(f"{base}/dimm_ce_count"),
        root.read_int(f"{base}/dimm_ue_count"),
        None,
        size_mb * 1024 * 1024 if size_mb else None,
    )


def _csrow(root: Root, base: str, mc: str, entry: str) -> list[DimmCount]:
    """The channels of an older-layout chip-select row; row-wide UEs blame every channel."""
    row_ue = root.read_int(f"{base}/ue_count") or 0
    out = []
    channels = sorted(
        {m.group(1) for n in root.listdir(base) if (m := re.fullmatch(r"(ch\d+)_dimm_label", n))}
    )
    for ch in channels:
        label = (root.read_text(f"{base}/{ch}_dimm_label") or "").strip() or f"{mc}{entry}{ch}"
        ue = root.read_int(f"{base}/{ch}_ue_count")
        shared = None
        if ue is None and row_ue:
            # this kernel counts uncorrectable errors per row only: any DIMM of it may be bad
            ue, shared = row_ue, f"{row_ue} uncorrectable errors on {entry}, channel unknown"
        out.append(DimmCount(label, root.read_int(f"{base}/{ch}_ce_count"), ue, shared))
    return out


def carry(
    saved: dict[str, Any] | None, boot: str, ce: int, ue: int, now: float, window_s: float
) -> tuple[dict[str, Any], int]:
    """The new persisted counters of one DIMM and its correctable errors in the window.

    A new boot id, or a counter lower than last seen, means the kernel restarted its
    counters: what was counted before goes into the offset. The first sight of a DIMM is
    its baseline (errors of unknown age are not a rate).
    """
    if saved is None:
        return {"boot": boot, "ce": ce, "ue": ue, "off_ce": 0, "off_ue": 0, "buckets": {}}, 0
    st = {**saved, "buckets": dict(saved.get("buckets", {}))}
    if st["boot"] != boot or ce < st["ce"] or ue < st["ue"]:
        st["off_ce"] += st["ce"]
        st["off_ue"] += st["ue"]
        new_ce = ce  # everything counted since this boot is new
    else:
        new_ce = ce - st["ce"]
    st.update(boot=boot, ce=ce, ue=ue)
    if new_ce > 0:
        key = str(int(now // BUCKET_S) * BUCKET_S)
        st["buckets"][key] = st["buckets"].get(key, 0) + new_ce
    # keep the buckets that overlap the window
    st["buckets"] = {k: v for k, v in st["buckets"].items() if int(k) + BUCKET_S > now - window_s}
    return st, sum(st["buckets"].values())


@dataclass
class RasCounts:
    """rasdaemon's memory errors of one DIMM label within the window."""

    ce: int = 0
    ue: int = 0


class EdacProbe:
    """DIMM correctable and uncorrectable error counts, kept across reboots."""

    name: ClassVar[str] = "edac"

    def __init__(self, ctx: ProbeContext) -> None:
        """Errors no DIMM can be blamed for are reported on the host."""
        self.host_id = component_id("host", ctx.host)
        self.limits, self.wall = ctx.limits, ctx.wall
        self.memo = Memo(ctx.state, "edac")
        self._ras: list[McEvent] = []  # rasdaemon records within the window
        self._ras_last_id = 0
        self._ras_labels: set[str] = set()  # labels rasdaemon named: reported while it runs

    def collect(self, root: Root) -> ProbeResult:
        """One dimm component per label the memory controllers (or rasdaemon) know."""
        now = self.wall()
        dimms, noinfo = sysfs_dimms(root)
        ras = self._ras_counts(root, now)
        host = tuple(Reading(self.host_id, m, float(v)) for m, v in noinfo.items())
        parts = [ProbeResult(readings=host)]
        seen = set()
        boot = boot_id(root)
        for d in dimms:
            seen.add(d.label)
            parts.append(self._report(d, boot, now, ras.get(d.label)))
        for label, counts in sorted(ras.items()):
            if label not in seen:  # a DIMM rasdaemon names but sysfs does not (ghes_edac)
                parts.append(self._report(DimmCount(label, None, None), boot, now, counts))
        return ProbeResult.merge(parts)

    def _ras_counts(self, root: Root, now: float) -> dict[str, RasCounts]:
        """Per DIMM label, rasdaemon's correctable and uncorrectable errors in the window."""
        path = ras_database(root)
        if path is None:
            return {}
        new = mc_events(path, self._ras_last_id)
        if new:
            self._ras_last_id = new[-1].id
        since = now - self.limits.ecc_window_s
        self._ras = [e for e in [*self._ras, *new] if e.at is not None and e.at >= since]
        self._ras_labels.update(e.label or f"mc{e.mc}-unknown" for e in new)
        out = {label: RasCounts() for label in self._ras_labels}
        for e in self._ras:
            counts = out.setdefault(e.label or f"mc{e.mc}-unknown", RasCounts())
            if e.corrected:
                counts.ce += e.count
            else:
                counts.ue += e.count
        return out

    def _report(
        self, d: DimmCount, boot: str, now: float, ras: RasCounts | None
    ) -> ProbeResult:
        """Readings, state and inventory of one DIMM."""
        cid = component_id("dimm", d.label)
        readings, window_ce, total_ce, total_ue = [], 0, None, None
        if d.ce is not None or d.ue is not None:
            st, window_ce = carry(
                self.memo.get(cid), boot, d.ce or 0, d.ue or 0, now, self.limits.ecc_window_s
            )
            self.memo.put(cid, st)
            total_ce, total_ue = st["off_ce"] + st["ce"], st["off_ue"] + st["ue"]
            if d.ce is not None:
                readings.append(Reading(cid, "edac.ce_count", float(total_ce)))
            if d.ue is not None:
                readings.append(Reading(cid, "edac.ue_count", float(total_ue)))
        if ras is not None:
            window_ce = max(window_ce, ras.ce)  # both count the same errors; trust the larger
        status, failure, detail = "ok", None, None
        if d.ue or (ras is not None and ras.ue):
            ue = (d.ue or ras.ue) if ras is not None else d.ue
            status, failure = "failed", "ecc_uncorrectable"
            detail = d.detail or f"{ue} uncorrectable ECC errors"
        elif window_ce >= self.limits.ecc_ce_threshold:
            status, failure = "warning", "ecc_correctable_rate"
            hours = self.limits.ecc_window_s / 3600
            detail = f"{window_ce} correctable ECC errors in {hours:g} h"
        state = ComponentState(cid, "dimm", status, slot=d.label, failure=failure, detail=detail)
        evidence = {
            "source": "edac" if ras is None else "edac+rasdaemon",
            "ce_count": total_ce,
            "ue_count": total_ue,
            "ce_since_boot": d.ce,
            "ue_since_boot": d.ue,
            "ce_in_window": window_ce,
            "window_s": self.limits.ecc_window_s,
        }
        return ProbeResult(
            readings=tuple(readings),
            states=(state,),
            inventory=(Component(cid, "dimm", slot=d.label, size_bytes=d.size_bytes),),
            evidence={cid: evidence},
        )
