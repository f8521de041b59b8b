"""Memory errors from the kernel's EDAC counters (/sys/devices/system/edac/mc).

Two layouts exist: the newer ``mcN/dimmN/`` (dimm_label, dimm_ce_count, dimm_ue_count)
and the older ``mcN/csrowN/`` (chN_dimm_label, chN_ce_count, and per-row ue_count). Any
uncorrectable error on a DIMM fails it; correctable ones are counted for trends.
"""

from __future__ import annotations

import re
from typing import ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeContext, ProbeResult, component_id
from agent.root import Root

EDAC = "sys/devices/system/edac/mc"


class EdacProbe:
    """DIMM correctable and uncorrectable error counts."""

    name: ClassVar[str] = "edac"

    def __init__(self, ctx: ProbeContext) -> None:
        """Errors no DIMM can be blamed for are reported on the host."""
        self.host_id = component_id("host", ctx.host)

    def collect(self, root: Root) -> ProbeResult:
        """One dimm component per label the memory controllers know."""
        parts = []
        for mc in root.listdir(EDAC):
            if not re.fullmatch(r"mc\d+", mc):
                continue
            base = f"{EDAC}/{mc}"
            for metric in ("ue_noinfo_count", "ce_noinfo_count"):
                value = root.read_int(f"{base}/{metric}")
                if value is not None:
                    parts.append(
                        ProbeResult(
                            readings=(
                                Reading(
                                    self.host_id,
                                    f"edac.{mc}.{metric.removesuffix('_count')}",
                                    float(value),
                                ),
                            )
                        )
                    )
            for entry in root.listdir(base):
                if re.fullmatch(r"(dimm|rank)\d+", entry):
                    parts.append(_dimm(root, f"{base}/{entry}", mc, entry))
                elif re.fullmatch(r"csrow\d+", entry):
                    parts += _csrow(root, f"{base}/{entry}", mc, entry)
        return ProbeResult.merge(parts)


def _dimm(root: Root, base: str, mc: str, entry: str) -> ProbeResult:
    """A DIMM of the newer layout, with its own counters."""
    label = (root.read_text(f"{base}/dimm_label") or "").strip() or f"{mc}-{entry}"
    size_mb = root.read_int(f"{base}/size")
    return _report(
        label,
        root.read_int(f"{base}/dimm_ce_count"),
        root.read_int(f"{base}/dimm_ue_count"),
        None,
        size_mb * 1024 * 1024 if size_mb else None,
    )


def _csrow(root: Root, base: str, mc: str, entry: str) -> list[ProbeResult]:
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
        out.append(_report(label, root.read_int(f"{base}/{ch}_ce_count"), ue, shared, None))
    return out


def _report(
    label: str, ce: int | None, ue: int | None, detail: str | None, size: int | None
) -> ProbeResult:
    """Readings, state and inventory of one DIMM."""
    cid = component_id("dimm", label)
    readings = []
    if ce is not None:
        readings.append(Reading(cid, "edac.ce_count", float(ce)))
    if ue is not None:
        readings.append(Reading(cid, "edac.ue_count", float(ue)))
    failed = bool(ue)
    state = ComponentState(
        cid,
        "dimm",
        "failed" if failed else "ok",
        slot=label,
        failure="ecc_uncorrectable" if failed else None,
        detail=(detail or f"{ue} uncorrectable ECC errors") if failed else None,
    )
    return ProbeResult(
        readings=tuple(readings),
        states=(state,),
        inventory=(Component(cid, "dimm", slot=label, size_bytes=size),),
        evidence={cid: {"source": "edac", "ce_count": ce, "ue_count": ue}},
    )
