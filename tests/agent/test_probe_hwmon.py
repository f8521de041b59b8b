"""hwmon probe: high limits, alarm and fault files, and the sustained-heat warning on an
injected monotonic clock (chips written from Documentation/hwmon/sysfs-interface.rst)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import Limits, ProbeContext, ProbeResult, default_registry
from agent.probes.base import Probe
from agent.root import Root
from tests.agent.conftest import SYSFS_ROOT
from tests.agent.test_probe_nic import Clock

CHIP = "sys/class/hwmon/hwmon0"


def chip(root: Path, **attrs: int) -> None:
    """Write a chip named nct6779 with the given attributes (e.g. temp1_input=45000)."""
    base = root / CHIP
    base.mkdir(parents=True, exist_ok=True)
    (base / "name").write_text("nct6779\n")
    for name, value in attrs.items():
        (base / name).write_text(f"{value}\n")


def hwmon(clock: Clock, limits: Limits | None = None) -> Probe:
    """The hwmon probe with an injected monotonic clock."""
    ctx = ProbeContext("h", monotonic=clock, limits=limits or Limits())
    (p,) = default_registry().build(["hwmon"], ctx)
    return p


def judged(result: ProbeResult, cid: str) -> tuple[str, str | None]:
    """(status, failure) of one sensor."""
    (state,) = [s for s in result.states if s.id == cid]
    return state.status, state.failure


T1 = "temp:nct6779-temp1"
V0 = "chassis:nct6779-in0"
# each step: (millidegrees, minutes since the previous step, expected) with max 80 C, crit 95 C
CASES = {
    "cool": [(45000, 0, ("ok", None)), (46000, 30, ("ok", None))],
    "high briefly is fine": [
        (85000, 0, ("ok", None)), (86000, 9, ("ok", None)), (70000, 2, ("ok", None)),
        (85000, 2, ("ok", None)), (85000, 9.9, ("ok", None))],
    "high for 10 minutes warns": [
        (85000, 0, ("ok", None)), (85000, 5, ("ok", None)),
        (86000, 5, ("warning", "temp_high_sustained")), (79000, 1, ("ok", None))],
    "critical fails at once": [(95000, 0, ("failed", "temp_critical"))],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_temperature_states(tmp_path: Path, case: str) -> None:
    clock = Clock()
    p = hwmon(clock)
    got, expected = [], []
    for milli, minutes, want in CASES[case]:
        clock.t += minutes * 60
        chip(tmp_path, temp1_input=milli, temp1_max=80000, temp1_crit=95000)
        got.append(judged(p.collect(Root(tmp_path)), T1))
        expected.append(want)
    assert got == expected


def test_sustained_period_is_configurable(tmp_path: Path) -> None:
    clock = Clock()
    p = hwmon(clock, Limits(temp_high_sustained_s=60))
    chip(tmp_path, temp1_input=81000, temp1_max=80000)
    assert judged(p.collect(Root(tmp_path)), T1) == ("ok", None)
    clock.t += 60
    result = p.collect(Root(tmp_path))
    assert judged(result, T1) == ("warning", "temp_high_sustained")
    (state,) = result.states
    assert state.detail == "81 C above high 80 C for 60 s"


@pytest.mark.parametrize(
    ("attrs", "cid", "expected"),
    [
        ({"temp1_input": 60000, "temp1_crit_alarm": 1}, T1, ("failed", "temp_critical")),
        ({"temp1_input": 60000, "temp1_max_alarm": 1}, T1, ("ok", None)),  # not yet sustained
        ({"fan1_input": 1200, "fan1_min": 600}, "fan:nct6779-fan1", ("ok", None)),
        ({"fan1_input": 500, "fan1_min": 600}, "fan:nct6779-fan1", ("failed", "fan_stopped")),
        ({"fan1_input": 0}, "fan:nct6779-fan1", ("failed", "fan_stopped")),
        ({"fan1_input": 1200, "fan1_fault": 1}, "fan:nct6779-fan1", ("failed", "fan_stopped")),
        ({"fan1_input": 1200, "fan1_alarm": 1}, "fan:nct6779-fan1", ("failed", "fan_stopped")),
        ({"fan1_input": 0, "fan1_enable": 0}, None, None),  # an unused header
        ({"in0_input": 1200, "in0_min": 1100, "in0_max": 1300}, V0, ("ok", None)),
        ({"in0_input": 1050, "in0_min": 1100, "in0_max": 1300}, V0, ("warning", "voltage_alarm")),
        ({"in0_input": 1350, "in0_min": 1100, "in0_max": 1300}, V0, ("warning", "voltage_alarm")),
        ({"in0_input": 1200, "in0_alarm": 1}, V0, ("warning", "voltage_alarm")),
        ({"in0_input": 1200, "in0_min": 0, "in0_max": 0}, V0, ("ok", None)),  # no limits set
    ],
)
def test_alarm_and_fault_files(
    tmp_path: Path, attrs: dict[str, int], cid: str | None, expected: tuple[str, str | None]
) -> None:
    chip(tmp_path, **attrs)
    result = hwmon(Clock()).collect(Root(tmp_path))
    if cid is None:
        assert result.states == ()
    else:
        assert judged(result, cid) == expected


def test_captured_coretemp_high_and_crit_readings() -> None:
    result = hwmon(Clock()).collect(Root(SYSFS_ROOT))
    values = {(r.component, r.metric): r.value for r in result.readings}
    assert values[("temp:coretemp.0-temp1", "temp.celsius")] == 55.0
    assert values[("temp:coretemp.0-temp1", "temp.high_celsius")] == 84.0
    assert values[("temp:coretemp.0-temp1", "temp.crit_celsius")] == 100.0
    assert values[("temp:hwmon4-temp1", "temp.high_celsius")] == 100.0
    failed = {s.id: s.failure for s in result.states if s.status == "failed"}
    assert failed == {"fan:applesmc-fan1": "fan_stopped", "fan:applesmc-fan2": "fan_stopped"}


def test_captured_voltage_alarm_warns_and_reads_volts() -> None:
    """node_exporter's nct6779 capture: in1_alarm 1 at 1.024 V, in0 quiet at 0 V."""
    result = hwmon(Clock()).collect(Root(SYSFS_ROOT))
    values = {(r.component, r.metric): r.value for r in result.readings}
    assert values[("chassis:nct6779-in1", "volt.volts")] == 1.024
    assert judged(result, "chassis:nct6779-in1") == ("warning", "voltage_alarm")
    assert judged(result, "chassis:nct6779-in0") == ("ok", None)
