"""The smart probe on real smartctl --json -x captures: exact metrics, healthy and failing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.probes import ProbeContext, default_registry
from agent.probes.smart import SmartProbe, interpret
from agent.root import Root
from tests.agent.conftest import failing, smart_json


def _interpret(name: str, slot: str = "sda", **changes: Any) -> tuple[dict[str, float], Any]:
    data = smart_json(name, serial_number="SN-" + name[:20], **changes)
    result = interpret(slot, data, data["smartctl"]["exit_status"])
    assert result is not None
    values = {r.metric: r.value for r in result.readings}
    (state,) = result.states
    return values, state


# file, expected raw readings, expected status and failure (the README's table)
ATA_CASES = [
    ("sata-hdd-healthy-hgst-he10.json",
     {"smart.attr_5_raw": 0, "smart.attr_197_raw": 0, "smart.attr_198_raw": 0,
      "smart.temperature_c": 25, "smart.exit_status": 0}, "ok", None),
    ("sata-hdd-healthy-packed-188-seagate-exos-x16.json",
     # 188's raw 51540393996 packs three 16-bit counters (12, 12, 12): the total is 12
     {"smart.attr_5_raw": 0, "smart.attr_187_raw": 0, "smart.attr_188_raw": 12,
      "smart.attr_197_raw": 0, "smart.attr_198_raw": 0, "smart.power_on_hours": 13114},
     "ok", None),
    ("sata-hdd-reallocated-1-seagate-st3500418as.json",
     {"smart.attr_5_raw": 1, "smart.attr_187_raw": 0, "smart.attr_188_raw": 1},
     "ok", None),  # first sight: the baseline (tests/agent/test_probe_smart_history.py)
    ("sata-hdd-reallocated-304-seagate-st3500418as.json",
     {"smart.attr_5_raw": 304, "smart.attr_188_raw": 0}, "ok", None),
    ("sata-ssd-reallocated-4-intel-s4510.json",
     {"smart.attr_5_raw": 4, "smart.attr_187_raw": 0, "smart.attr_197_raw": 0},
     "ok", None),  # first sight: the baseline (tests/agent/test_probe_smart_history.py)
    # exit 64: the device error log has entries -- recorded, not a failure
    ("sata-hdd-errorlog-exit64-wdc-re3.json",
     {"smart.attr_5_raw": 0, "smart.exit_status": 64, "smart.temperature_c": 26}, "ok", None),
    # exit 4: one SMART command failed, but health and attributes were read
    ("sata-ssd-exit4-kingston-a400.json",
     {"smart.attr_187_raw": 0, "smart.exit_status": 4}, "ok", None),
    ("sata-ssd-healthy-samsung.json", {"smart.attr_5_raw": 0, "smart.attr_187_raw": 0}, "ok", None),
    ("sata-hdd-healthy-wdc-re4.json", {"smart.attr_5_raw": 0, "smart.attr_198_raw": 0}, "ok", None),
]


@pytest.mark.parametrize(("name", "expected", "status", "failure"), ATA_CASES)
def test_ata(name: str, expected: dict[str, float], status: str, failure: str | None) -> None:
    values, state = _interpret(name)
    assert {k: values[k] for k in expected} == expected
    assert (state.status, state.failure) == (status, failure)


def test_ata_missing_attributes_are_not_invented() -> None:
    values, _ = _interpret("sata-hdd-healthy-hgst-he10.json")
    assert "smart.attr_187_raw" not in values
    assert "smart.attr_188_raw" not in values


NVME_CASES = [
    ("nvme-healthy-samsung-970.json", {"smart.critical_warning": 0, "smart.media_errors": 0,
                                        "smart.available_spare": 100, "smart.percentage_used": 0,
                                        "smart.temperature_c": 35}),
    ("nvme-spare-93-worn-51pct-intel-p3700.json",
     {"smart.critical_warning": 0, "smart.media_errors": 0, "smart.available_spare": 93,
      "smart.percentage_used": 51}),
    ("nvme-worn-75pct-intel-p4510.json",
     {"smart.critical_warning": 0, "smart.available_spare": 99, "smart.percentage_used": 75}),
]


@pytest.mark.parametrize(("name", "expected"), NVME_CASES)
def test_nvme(name: str, expected: dict[str, float]) -> None:
    values, state = _interpret(name, slot="nvme0")
    assert {k: values[k] for k in expected} == expected
    assert state.status == "ok"
    assert state.slot == "nvme0"


def test_nvme_critical_warning_fails_the_drive() -> None:
    data = smart_json("nvme-healthy-samsung-970.json", serial_number="S4EUNX0N")
    data["nvme_smart_health_information_log"]["critical_warning"] = 0x04  # reliability degraded
    result = interpret("nvme0", data, 0)
    assert result is not None
    (state,) = result.states
    assert (state.status, state.failure) == ("failed", "nvme_critical_warning")


def test_sas() -> None:
    values, state = _interpret("sas-hdd-healthy-hitachi.json")
    assert values["smart.grown_defects"] == 0
    assert state.status == "ok"
    values, state = _interpret("sas-hdd-grown-defects-260-seagate.json", slot="sdb")
    assert values["smart.grown_defects"] == 260
    assert values["smart.read_uncorrected_errors"] == 1
    assert values["smart.write_uncorrected_errors"] == 535
    assert (state.status, state.failure) == ("warning", "grown_defects")


@pytest.mark.parametrize("name", [
    "sata-hdd-healthy-hgst-he10.json", "nvme-healthy-samsung-970.json",
    "sas-hdd-healthy-hitachi.json",
])
def test_smart_status_failed_is_failed(name: str) -> None:
    data = failing(name, "ZL2ABCD1")
    result = interpret("sda", data, data["smartctl"]["exit_status"])
    assert result is not None
    (state,) = result.states
    assert (state.id, state.status, state.failure, state.serial) == (
        "disk:ZL2ABCD1", "failed", "smart_failed", "ZL2ABCD1")
    assert result.evidence["disk:ZL2ABCD1"]["smart_status_passed"] is False
    assert result.evidence["disk:ZL2ABCD1"]["exit_status"] & 8


def test_exit_bit_3_alone_is_failed() -> None:
    data = smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="WD-1")
    result = interpret("sda", data, 8)
    assert result is not None
    assert result.states[0].status == "failed"


def test_inventory_and_sanitized_id() -> None:
    data = smart_json("sata-hdd-healthy-hgst-he10.json", serial_number=" 2EK #1/+ ")
    result = interpret("sde", data, 0)
    assert result is not None
    (disk,) = result.inventory
    assert disk.id == "disk:2EK_1"
    assert (disk.slot, disk.device, disk.model, disk.size_bytes) == (
        "sde", "/dev/sde", "HGST HUH721008ALE604", 8001563222016)
    assert disk.attrs["protocol"] == "ATA"
    sas = interpret("sda", smart_json("sas-hdd-healthy-hitachi.json", serial_number="X"), 0)
    assert sas is not None
    assert sas.inventory[0].model == "HITACHI H109060SESUN600G"


def test_unidentified_device_reports_nothing() -> None:
    assert interpret("sda", {"smartctl": {"exit_status": 2}}, 2) is None


def test_probe_reads_every_recorded_device_and_caches(
    replay_root: Callable[..., Path],
) -> None:
    root = Root(replay_root({
        "sda": smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="WD-A"),
        "nvme0": smart_json("nvme-healthy-samsung-970.json", serial_number="S4E-B"),
        "sdb": failing("sata-hdd-healthy-hgst-he10.json", "HGST-C"),
    }))
    clock = [0.0]
    (probe,) = default_registry().build(
        ["smart"], ProbeContext("h", smart_interval_s=900, monotonic=lambda: clock[0]))
    assert isinstance(probe, SmartProbe)
    first = probe.collect(root)
    assert {(s.id, s.slot, s.status) for s in first.states} == {
        ("disk:WD-A", "sda", "ok"), ("disk:S4E-B", "nvme0", "ok"), ("disk:HGST-C", "sdb", "failed")}
    clock[0] = 899.0
    assert probe.collect(root) is first  # within smart_interval_s: the last answer
    (root.path / "cmd" / "smartctl" / "sda.json").unlink()
    clock[0] = 900.0  # a disk gone from the listing is gone from the result at once
    assert {s.id for s in probe.collect(root).states} == {"disk:S4E-B", "disk:HGST-C"}
