"""The ipmi probe on real and documented ipmitool output, through the replay root."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent.probes import ProbeContext
from agent.probes.ipmi import IpmiProbe, parse_sdr
from agent.root import Root
from schemas.mqtt_contract import errors
from tests.agent.conftest import FIXTURES

IPMI = FIXTURES / "ipmi"


def ipmi_root(replay_root: Callable[..., Path], sdr: str, sel: str | None = None) -> Path:
    """A replay root whose ipmitool answers with the given fixtures."""
    files = {"cmd/ipmitool-sdr.txt": (IPMI / sdr).read_text()}
    if sel:
        files["cmd/ipmitool-sel.txt"] = (IPMI / sel).read_text()
    return replay_root(files=files)


def states(root: Path) -> dict[str, tuple[str, str | None]]:
    """component id -> (status, failure)."""
    res = IpmiProbe(ProbeContext("h")).collect(Root(root))
    return {s.id: (s.status, s.failure) for s in res.states}


def test_healthy_ibm_sdr_list_is_all_ok(replay_root: Callable[..., Path]) -> None:
    got = states(ipmi_root(replay_root, "ipmitool-sdr-ibm-healthy.txt"))
    assert got["psu:1"] == got["psu:2"] == ("ok", None)
    assert got["fan:Fan_1A_Tach"] == ("ok", None)
    assert {status for status, _ in got.values()} == {"ok"}
    assert len(parse_sdr((IPMI / "ipmitool-sdr-ibm-healthy.txt").read_text())) == 133


def test_curated_elist_reads_psu_power_and_fan(replay_root: Callable[..., Path]) -> None:
    res = IpmiProbe(ProbeContext("h")).collect(
        Root(ipmi_root(replay_root, "ipmitool-sdr-elist-curated.txt")))
    readings = {(r.component, r.metric): r.value for r in res.readings}
    assert readings[("psu:1", "psu.watts")] == 110
    assert readings[("fan:Fan1", "fan.rpm")] == 5040
    assert readings[("temp:Inlet_Temp", "temp.celsius")] == 25
    assert {s.id: s.status for s in res.states} == {"psu:1": "ok", "fan:Fan1": "ok",
                                                    "temp:Inlet_Temp": "ok"}
    assert [c.id for c in res.inventory] == ["psu:1"]


def test_psu_ac_lost_and_redundancy_lost_fail_that_psu(replay_root: Callable[..., Path]) -> None:
    root = ipmi_root(replay_root, "ipmitool-sdr-elist-psu-ac-lost.txt",
                     "ipmitool-sel-elist-psu-ac-lost.txt")
    res = IpmiProbe(ProbeContext("h")).collect(Root(root))
    got = {s.id: (s.status, s.failure) for s in res.states}
    assert got["psu:2"] == ("failed", "psu_lost")
    assert got["psu:1"] == ("ok", None)
    assert "psu:redundancy" not in got  # explained by PSU 2: one part, one incident
    ev = res.evidence["psu:2"]
    assert {s["reading"] for s in ev["sensors"]} >= {"Presence detected, Power Supply AC lost",
                                                     "Redundancy Lost"}
    assert any("Power Supply AC lost | Asserted" in line for line in ev["sel"])
    detail = next(s.detail for s in res.states if s.id == "psu:2")
    assert detail is not None
    assert "AC lost" in detail


def test_redundancy_lost_alone_is_its_own_failed_psu_part(
    replay_root: Callable[..., Path]
) -> None:
    text = "PS Redundancy    | 77h | ok  |  7.1 | Non-Redundant: Sufficient from Redundant\n"
    root = replay_root(files={"cmd/ipmitool-sdr.txt": text})
    assert states(root) == {"psu:redundancy": ("failed", "psu_lost")}


def test_critical_sensors_fail_and_warning_sensors_warn(
    replay_root: Callable[..., Path]
) -> None:
    got = states(ipmi_root(replay_root, "ipmitool-sdr-elist-thresholds.txt"))
    assert got["fan:Fan2_RPM"] == ("failed", "fan_failed")
    assert got["temp:Temp"] == ("failed", "temp_critical")
    assert got["bmc:Planar_12V"] == ("failed", "bmc_critical")
    assert got["temp:Exhaust_Temp"] == ("warning", "bmc_warning")
    assert got["bmc:Planar_3.3V"] == ("warning", "bmc_warning")
    assert got["psu:2"] == ("warning", "psu_degraded")
    assert got["fan:Fan1_RPM"] == got["psu:1"] == got["psu:redundancy"] == ("ok", None)
    assert "bmc:SEL" not in got
    assert "bmc:Intrusion" not in got


def test_no_ipmitool_output_is_nothing_to_report(replay_root: Callable[..., Path]) -> None:
    assert states(replay_root()) == {}


def test_the_sdr_is_reread_only_every_minute(replay_root: Callable[..., Path]) -> None:
    now = [0.0]
    root = ipmi_root(replay_root, "ipmitool-sdr-elist-curated.txt")
    probe = IpmiProbe(ProbeContext("h", monotonic=lambda: now[0]))
    assert probe.collect(Root(root)).states
    (root / "cmd" / "ipmitool-sdr.txt").unlink()
    now[0] = 59.0
    assert probe.collect(Root(root)).states  # the last answer, repeated
    now[0] = 60.0
    assert not probe.collect(Root(root)).states


def test_once_prints_the_psu_event(tmp_path: Path, replay_root: Callable[..., Path]) -> None:
    root = ipmi_root(replay_root, "ipmitool-sdr-elist-psu-ac-lost.txt",
                     "ipmitool-sel-elist-psu-ac-lost.txt")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site: iad1\nhost: web-01\nspool_path: {tmp_path / 's.db'}\n"
                   "probes: [ipmi]\n")
    out = subprocess.run([sys.executable, "-m", "agent", "once", "--config", str(cfg),
                          "--root", str(root)], capture_output=True, text=True, check=True)
    msgs = [json.loads(line) for line in out.stdout.splitlines()]
    assert all(errors(m["payload"]["kind"], m["payload"]) == [] for m in msgs)
    events = [m["payload"] for m in msgs if m["topic"].endswith("/event")]
    assert [(e["component"], e["status"], e["failure"]) for e in events] == [
        ("psu:2", "failed", "psu_lost")]
    birth = next(m["payload"] for m in msgs if m["topic"].endswith("/birth"))
    assert {"psu:1", "psu:2"} <= {c["id"] for c in birth["components"]}
