"""The replay-root seam: files, ttar link placeholders, recorded tool output."""

from __future__ import annotations

import json
from pathlib import Path

from agent.root import Root, replay_file
from tests.agent.conftest import SMARTCTL, SYSFS_ROOT


def test_reads_through_ttar_link_placeholders() -> None:
    root = Root(SYSFS_ROOT)
    # sys/class/hwmon/hwmon2 is a file holding "../../devices/platform/applesmc.768/hwmon/hwmon2"
    assert "device" in root.listdir("sys/class/hwmon/hwmon2")
    assert root.read_text("sys/class/hwmon/hwmon2/device/fan1_label") == "Left side\n"
    assert root.read_int("sys/class/hwmon/hwmon2/device/fan2_input") == 1998
    assert root.link_name("sys/class/hwmon/hwmon2/device") == "applesmc.768"


def test_absent_is_none_never_an_error(tmp_path: Path) -> None:
    root = Root(tmp_path)
    assert root.read_text("proc/loadavg") is None
    assert root.read_int("sys/class/hwmon/hwmon0/temp1_input") is None
    assert root.listdir("sys/class/hwmon") == []
    assert root.cmd_output("smartctl", ["--json", "-x", "/dev/sda"]) is None
    assert root.cmd_output("dmidecode", []) is None
    assert root.cmd_targets("smartctl") == []


def test_never_reads_outside_the_replay_root(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    root = Root(tmp_path / "r")
    assert root.read_text("../secret") is None


def test_smartctl_replay_takes_exit_status_from_its_json(tmp_path: Path) -> None:
    (tmp_path / "cmd" / "smartctl").mkdir(parents=True)
    text = (SMARTCTL / "sata-hdd-errorlog-exit64-wdc-re3.json").read_text()
    (tmp_path / "cmd" / "smartctl" / "sda.json").write_text(text)
    root = Root(tmp_path)
    assert root.cmd_targets("smartctl") == ["sda"]
    done = root.cmd_output("smartctl", ["--json", "-x", "/dev/sda"])
    assert done is not None
    assert done.exit_status == 64
    assert json.loads(done.stdout)["model_name"] == "WDC WD5002ABYS-02B1B0"


def test_replay_file_table() -> None:
    assert replay_file("smartctl", ["--json", "-x", "/dev/nvme0"]) == "smartctl/nvme0.json"
    assert replay_file("ipmitool", ["sdr", "elist"]) == "ipmitool-sdr.txt"
    assert replay_file("ipmitool", ["sel", "elist"]) == "ipmitool-sel.txt"
    assert replay_file("ipmitool", ["mc", "info"]) is None


def test_live_root_runs_tools_and_absent_tool_is_none() -> None:
    root = Root("/")
    assert root.live
    done = root.cmd_output("true", [])
    assert done is not None
    assert done.exit_status == 0
    assert root.cmd_output("no-such-tool-hourglass", []) is None
    assert root.cmd_targets("smartctl") is None
    assert root.read_text("proc/loadavg") is not None
