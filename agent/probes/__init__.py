"""The probe registry: each probe registers under a stable name."""

from __future__ import annotations

from agent.probes.base import (
    Limits,
    Memo,
    MemoryState,
    Probe,
    ProbeContext,
    ProbeFactory,
    ProbeResult,
    Registry,
    StateStore,
    component_id,
)


def default_registry() -> Registry:
    """A registry holding every built-in probe."""
    from agent.probes import edac, hwmon, ipmi, mce, mdstat, nic, smart, system

    reg = Registry()
    reg.register(system.SystemProbe.name, system.SystemProbe)
    reg.register(smart.SmartProbe.name, smart.SmartProbe)
    reg.register(edac.EdacProbe.name, edac.EdacProbe)
    reg.register(mdstat.MdstatProbe.name, mdstat.MdstatProbe)
    reg.register(ipmi.IpmiProbe.name, ipmi.IpmiProbe)
    reg.register(mce.MceProbe.name, mce.MceProbe)
    reg.register(nic.NicProbe.name, nic.NicProbe)
    reg.register(hwmon.HwmonProbe.name, hwmon.HwmonProbe)
    return reg


__all__ = [
    "Limits",
    "Memo",
    "MemoryState",
    "Probe",
    "ProbeContext",
    "ProbeFactory",
    "ProbeResult",
    "Registry",
    "StateStore",
    "component_id",
    "default_registry",
]
