"""The system probe on captured sysfs (hwmon) and written /proc files: exact metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.messages import ComponentState, Reading
from agent.probes import ProbeContext, default_registry
from agent.probes.hwmon import chips, collect
from agent.root import Root
from tests.agent.conftest import SYSFS_ROOT


def _values(readings: tuple[Reading, ...]) -> dict[tuple[str, str], float]:
    return {(r.component, r.metric): r.value for r in readings}


def _states(states: tuple[ComponentState, ...]) -> dict[str, ComponentState]:
    return {s.id: s for s in states}


def test_chip_labels_are_stable_names() -> None:
    labels = {c.hwmon: c.label for c in chips(Root(SYSFS_ROOT))}
    # two chips named coretemp are told apart by their device, not by hwmonN
    assert labels == {
        "hwmon0": "coretemp.0", "hwmon1": "coretemp.1", "hwmon2": "applesmc",
        "hwmon3": "nct6779", "hwmon4": "hwmon4", "hwmon5": "bogus", "hwmon6": "asus",
        "hwmon7": "asus_wmi_sensors",
    }


def test_fans_exact_and_stopped_fan_fails() -> None:
    result = collect(Root(SYSFS_ROOT))
    values = _values(result.readings)
    assert values[("fan:applesmc-fan1", "fan.rpm")] == 0.0
    assert values[("fan:applesmc-fan1", "fan.min_rpm")] == 2160.0
    assert values[("fan:applesmc-fan2", "fan.rpm")] == 1998.0
    assert values[("fan:nct6779-fan2", "fan.rpm")] == 1098.0
    states = _states(result.states)
    stopped = states["fan:applesmc-fan1"]
    assert (stopped.status, stopped.failure, stopped.slot) == ("failed", "fan_stopped", "Left side")
    # below its minimum is a failure too (docs/signals.md: fan_stopped)
    assert (states["fan:applesmc-fan2"].status, states["fan:applesmc-fan2"].failure,
            states["fan:applesmc-fan2"].detail) == (
        "failed", "fan_stopped", "1998 rpm below minimum 2000")
    assert states["fan:nct6779-fan2"].status == "ok"
    assert result.evidence["fan:applesmc-fan1"]["rpm"] == 0


def test_temperatures_exact() -> None:
    result = collect(Root(SYSFS_ROOT))
    values = _values(result.readings)
    assert values[("temp:coretemp.0-temp1", "temp.celsius")] == 55.0
    assert values[("temp:coretemp.0-temp1", "temp.crit_celsius")] == 100.0
    assert values[("temp:coretemp.1-temp5", "temp.celsius")] == 50.0
    assert values[("temp:hwmon4-temp2", "temp.celsius")] == 54.0
    states = _states(result.states)
    assert states["temp:coretemp.0-temp1"].slot == "Physical id 0"
    assert all(s.status == "ok" for s in result.states if s.kind == "temp")


def test_at_critical_fails(tmp_path: Path) -> None:
    chip = tmp_path / "sys" / "class" / "hwmon" / "hwmon0"
    chip.mkdir(parents=True)
    for name, text in {"name": "k10temp", "temp1_input": "101000", "temp1_crit": "100000"}.items():
        (chip / name).write_text(text + "\n")
    (state,) = collect(Root(tmp_path)).states
    assert (state.id, state.status, state.failure) == ("temp:k10temp-temp1", "failed",
                                                       "temp_critical")


PROC = {
    "proc/loadavg": "0.52 0.41 0.30 2/139 13732\n",
    "proc/meminfo": "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
                    "MemAvailable:    4000000 kB\nHugePages_Total:       0\n",
    "proc/stat": "cpu  600 0 200 1000 200 0 0 0 0 0\ncpu0 300 0 100 500 100 0 0 0 0 0\n",
    "proc/net/dev": (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
        " errs drop fifo colls carrier compressed\n"
        "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
        "  eno1: 5000 50 2 1 0 0 0 0 7000 70 3 4 0 0 0 0\n"
        "  eno2: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    ),
    "proc/cpuinfo": (
        "processor\t: 0\nphysical id\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n"
        "cpu cores\t: 2\n\nprocessor\t: 1\nphysical id\t: 0\n"
        "model name\t: Intel(R) Xeon(R) Gold 6338\ncpu cores\t: 2\n"
    ),
    "sys/class/net/eno1/operstate": "up\n",
    "sys/class/net/eno1/speed": "10000\n",
    "sys/class/net/eno1/flags": "0x1003\n",
    "sys/class/net/eno1/address": "b4:96:91:00:00:01\n",
    "sys/class/net/eno1/device": "../../../0000:3b:00.0\n",
    "sys/class/net/eno2/operstate": "down\n",
    "sys/class/net/eno2/speed": "-1\n",
    "sys/class/net/eno2/flags": "0x1003\n",
    "sys/class/net/eno2/device": "../../../0000:3b:00.1\n",
    "sys/class/net/lo/operstate": "unknown\n",
}


def test_system_probe_exact(replay_root: Callable[..., Path]) -> None:
    root = Root(replay_root(files=PROC))
    (probe,) = default_registry().build(["system"], ProbeContext("web-01"))
    result = probe.collect(root)
    values = _values(result.readings)
    host = "host:web-01"
    assert values[(host, "load.1m")] == 0.52
    assert values[(host, "load.15m")] == 0.30
    assert values[(host, "mem.total_bytes")] == 16000000 * 1024
    assert values[(host, "mem.available_bytes")] == 4000000 * 1024
    assert values[(host, "mem.used_percent")] == 75.0
    # busy = (600 + 200) / 2000 jiffies since boot on the first collection
    assert values[(host, "cpu.percent")] == 40.0
    # ports are the nic probe's now (tests/agent/test_probe_nic.py): no duplicates here
    assert not any(r.component.startswith("nic:") for r in result.readings)
    inventory = {c.id: c for c in result.inventory}
    assert inventory["cpu:0"].model == "Intel(R) Xeon(R) Gold 6338"
    assert inventory["cpu:0"].attrs == {"threads": 2, "cores": 2}
    # no filesystem usage from a replay root: statvfs needs the live host
    assert not any(s.kind == "fs" for s in result.states)


def test_system_probe_live_host_is_sane() -> None:
    (probe,) = default_registry().build(["system"], ProbeContext("self"))
    result = probe.collect(Root("/"))
    values = _values(result.readings)
    assert values[("host:self", "mem.total_bytes")] > 0
    assert 0 <= values[("host:self", "cpu.percent")] <= 100
    assert any(s.kind == "fs" and s.slot == "/" for s in result.states)
