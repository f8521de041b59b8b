"""The hourglass-agent command line: once on replay roots, check, python -m agent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from schemas.mqtt_contract import errors
from tests.agent.conftest import SYSFS_ROOT, failing, smart_json


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"site: iad1\nhost: web-01\nspool_path: {tmp_path / 'spool.db'}\n{extra}")
    return path


def _once(capsys: pytest.CaptureFixture[str], config: Path, root: Path) -> list[dict[str, Any]]:
    assert main(["once", "--config", str(config), "--root", str(root)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _check_contract(lines: list[dict[str, Any]]) -> None:
    for line in lines:
        kind = line["topic"].rsplit("/", 1)[1]
        assert line["topic"] == f"hg/v1/iad1/web-01/{kind}"
        assert errors(kind, line["payload"]) == [], line
    assert [line["payload"]["seq"] for line in lines] == list(range(1, len(lines) + 1))


def test_once_healthy_root_is_valid_and_has_no_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replay_root: Callable[..., Path]
) -> None:
    root = replay_root({"sda": smart_json("sata-hdd-healthy-hgst-he10.json", serial_number="A1"),
                        "nvme0": smart_json("nvme-healthy-samsung-970.json", serial_number="B2")})
    lines = _once(capsys, _config(tmp_path), root)
    _check_contract(lines)
    assert [line["payload"]["kind"] for line in lines] == ["birth", "state", "telemetry"]
    birth, online, telemetry = (line["payload"] for line in lines)
    assert online["state"] == "online"
    assert {c["id"] for c in birth["components"]} == {"disk:A1", "disk:B2"}
    readings = {(r["component"], r["metric"]): r["value"] for r in telemetry["readings"]}
    assert readings[("disk:B2", "smart.available_spare")] == 100
    assert not (tmp_path / "spool.db").exists()  # once never touches the real spool


def test_once_failing_disk_prints_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replay_root: Callable[..., Path]
) -> None:
    root = replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1"),
                        "sdb": smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="OK1")})
    lines = _once(capsys, _config(tmp_path), root)
    _check_contract(lines)
    (event,) = [line["payload"] for line in lines if line["payload"]["kind"] == "event"]
    assert (event["component"], event["status"], event["failure"], event["slot"]) == (
        "disk:ZL2ABCD1", "failed", "smart_failed", "sda")
    assert event["evidence"]["smart_status_passed"] is False
    telemetry = lines[-1]["payload"]
    states = {c["id"]: c["status"] for c in telemetry["components"]}
    assert states == {"disk:ZL2ABCD1": "failed", "disk:OK1": "ok"}


def test_once_on_captured_sysfs_reports_stopped_fan_and_ecc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _once(capsys, _config(tmp_path), SYSFS_ROOT)
    _check_contract(lines)
    events = {line["payload"]["component"]: line["payload"]["failure"]
              for line in lines if line["payload"]["kind"] == "event"}
    assert events["fan:applesmc-fan1"] == "fan_stopped"
    assert events["dimm:mc0csrow0channel0"] == "ecc_uncorrectable"
    assert events["fan:applesmc-fan2"] == "fan_stopped"  # 1998 rpm, below its minimum 2000


def test_check_reports_config_error_without_traceback(tmp_path: Path) -> None:
    bad = _config(tmp_path, "interval_s: soon\n")
    done = subprocess.run([sys.executable, "-m", "agent", "check", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert "'interval_s'" in done.stderr
    assert "Traceback" not in done.stderr
    good = subprocess.run([sys.executable, "-m", "agent", "check", "--config",
                           str(_config(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr


def test_once_and_run_reject_bad_config_the_same_way(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    for command in ("once", "run"):
        assert main([command, "--config", str(missing)]) == 2
        assert str(missing) in capsys.readouterr().err


def test_capture_writes_a_root_once_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "captured"
    assert main(["capture", "--out", str(out)]) == 0
    assert (out / "proc" / "meminfo").is_file()
    capsys.readouterr()
    lines = _once(capsys, _config(tmp_path), out)
    _check_contract(lines)
    telemetry = lines[-1]["payload"]
    metrics = {r["metric"] for r in telemetry["readings"]}
    assert {"mem.total_bytes", "load.1m", "cpu.percent"} <= metrics
