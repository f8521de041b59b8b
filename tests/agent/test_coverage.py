"""Coverage you can see: a disk in /sys that smartctl does not answer for stays in the birth,
unwatched and saying why; `hourglass-agent check` names the package that is missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.cli import main
from agent.probes import coverage as agent_coverage
from collector import wire
from schemas import coverage
from schemas.mqtt_contract import errors
from tests.agent.conftest import smart_json

# A SATA disk as sysfs shows it: the block device, its device link, model and (here) serial.
SDA = {"sys/block/sda/device/model": "ST8000NM000A-2KE\n",
       "sys/block/sda/device/serial": "ZA1EXAMPLE\n"}
# smartctl --json's answer when the user may not open the disk (exit status 2, bit 1).
DENIED = {"json_format_version": [1, 0], "smartctl": {
    "exit_status": 2, "messages": [{"string": "Smartctl open device: /dev/sdb failed: "
                                              "Permission denied", "severity": "error"}]}}


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"site: iad1\nhost: web-01\nspool_path: {tmp_path / 'spool.db'}\n")
    return path


def _birth(capsys: pytest.CaptureFixture[str], tmp_path: Path, root: Path) -> dict[str, Any]:
    assert main(["once", "--config", str(_config(tmp_path)), "--root", str(root)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    birth: dict[str, Any] = lines[0]["payload"]
    assert errors("birth", birth) == []  # the JSON Schema accepts it ...
    assert isinstance(wire.parse("birth", json.dumps(birth).encode()), wire.Birth)  # msgspec
    return birth


def test_a_disk_smartctl_cannot_answer_for_stays_in_the_birth_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replay_root: Callable[..., Path]
) -> None:
    birth = _birth(capsys, tmp_path, replay_root(files=SDA))  # no cmd/smartctl: not installed
    assert birth["components"] == [{
        "id": "disk:ZA1EXAMPLE", "kind": "disk", "slot": "sda", "device": "/dev/sda",
        "model": "ST8000NM000A-2KE", "serial": "ZA1EXAMPLE",
        "coverage": {"status": "tool_missing",
                     "detail": "smartctl not found: install smartmontools"}}]
    probes = {p["probe"]: p for p in birth["probes"]}
    assert probes["smart"] == {"probe": "smart", "status": "tool_missing", "package":
                               "smartmontools", "detail": "1 of 1 disks unwatched (sda): "
                               "smartctl not found"}
    assert probes["ipmi"]["status"] == "no_devices"
    # every enabled probe says what it can watch, the tool-less ones too
    assert set(probes) == {"system", "smart", "edac", "mdstat", "ipmi", "mce", "nic", "hwmon"}
    assert probes["hwmon"] == {"probe": "hwmon", "status": "no_devices",
                               "detail": "nothing to read on this host"}


def test_permission_denied_and_working_disks_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replay_root: Callable[..., Path]
) -> None:
    root = replay_root({"sda": smart_json("sata-hdd-healthy-hgst-he10.json",
                                          serial_number="A1"), "sdb": DENIED},
                       files={**SDA, "sys/block/sdb/device/model": "X\n"})
    birth = _birth(capsys, tmp_path, root)
    by_slot = {c["slot"]: c for c in birth["components"]}
    assert "coverage" not in by_slot["sda"]
    assert by_slot["sdb"]["id"] == "disk:sdb"  # no serial in sysfs: named by its device
    assert by_slot["sdb"]["coverage"]["status"] == "permission_denied"
    smart = next(p for p in birth["probes"] if p["probe"] == "smart")
    assert smart["status"] == "permission_denied"
    assert "package" not in smart


def test_check_prints_each_probe_with_the_package_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replay_root: Callable[..., Path]
) -> None:
    root = replay_root(files={**SDA, "sys/class/ipmi/ipmi0/dev": "240:0\n"})
    assert main(["check", "--config", str(_config(tmp_path)), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(out)  # shown with -s: the closing note quotes it
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("probe ")}
    assert "tool_missing" in lines["smart"]
    assert lines["smart"].endswith("-> install smartmontools")
    assert "tool_missing" in lines["ipmi"]
    assert lines["ipmi"].endswith("-> install ipmitool")
    assert "no_devices" in lines["mdstat"]
    assert main(["check", "--config-only", "--config", str(_config(tmp_path)),
                 "--root", str(root)]) == 0
    assert "probe " not in capsys.readouterr().out


def test_the_agent_and_the_contract_name_the_same_statuses_and_packages() -> None:
    assert agent_coverage.STATUSES == coverage.STATUSES
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "mqtt" /
                         "birth.json").read_text())
    assert tuple(schema["properties"]["probes"]["items"]["properties"]["status"]["enum"]) \
        == coverage.STATUSES
    for probe, watched in coverage.PROBES.items():
        assert agent_coverage.PACKAGES[watched.tool] == watched.package, probe
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"probe": "smart", "status": "fine"}, wire.ProbeCoverage)
