"""The smart probe over time: per-serial baselines kept in the spool, self-tests, NVMe
limits, staggered reads and disks in standby left asleep (real smartctl captures, changed
as smartctl's JSON format documents)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.probes import Limits, MemoryState, ProbeContext, ProbeResult, default_registry
from agent.probes.base import Probe, StateStore
from agent.probes.smart import interpret
from agent.root import CmdResult, Root
from agent.spool import Spool
from tests.agent.conftest import smart_json

#: What smartctl -n standby prints (as JSON) for a sleeping disk; exit status 2.
STANDBY = {
    "json_format_version": [1, 0],
    "smartctl": {"version": [7, 3], "exit_status": 2, "messages": [
        {"string": "Device is in STANDBY mode, exit(2)", "severity": "information"}]},
    "device": {"name": "/dev/sda", "type": "sat", "protocol": "ATA"},
}


def smart(state: StateStore, clock: Callable[[], float] = lambda: 0.0,
          limits: Limits | None = None) -> Probe:
    """The smart probe with a 900 s interval, an injected clock and state."""
    ctx = ProbeContext("h", smart_interval_s=900, monotonic=clock, state=state,
                       limits=limits or Limits())
    (p,) = default_registry().build(["smart"], ctx)
    return p


def judged(result: ProbeResult) -> list[tuple[str, str, str | None]]:
    """(id, status, failure) of every disk."""
    return [(s.id, s.status, s.failure) for s in result.states]


def set_attr(data: dict[str, Any], attr_id: int, raw: int) -> dict[str, Any]:
    """Change one ATA attribute's raw value (number and string, as smartctl writes both)."""
    for attr in data["ata_smart_attributes"]["table"]:
        if attr["id"] == attr_id:
            attr["raw"] = {"value": raw, "string": str(raw)}
    return data


def test_rising_counter_against_the_serials_baseline_survives_a_restart(
    tmp_path: Path, replay_root: Callable[..., Path]
) -> None:
    # the same ST3500418AS model at 1 and then 304 reallocated sectors (the README's pair)
    first = smart_json("sata-hdd-reallocated-1-seagate-st3500418as.json", serial_number="Z1")
    later = smart_json("sata-hdd-reallocated-304-seagate-st3500418as.json", serial_number="Z1")
    spool = Spool(tmp_path / "spool.db", "h")
    root = replay_root({"sda": first})
    assert judged(smart(spool).collect(Root(root))) == [("disk:Z1", "ok", None)]
    spool.close()
    (root / "cmd" / "smartctl" / "sda.json").write_text(json.dumps(later))
    again = Spool(tmp_path / "spool.db", "h")  # a restarted agent, same spool file
    result = smart(again).collect(Root(root))
    assert judged(result) == [("disk:Z1", "warning", "smart_counter_rising")]
    assert result.states[0].detail == "Reallocated_Sector_Ct raw 304, was 1"
    again.close()


@pytest.mark.parametrize(
    ("attr_id", "before", "after", "expected"),
    [
        (5, 0, 0, ("ok", None)),
        (5, 0, 8, ("warning", "smart_counter_rising")),
        (187, 0, 2, ("warning", "smart_counter_rising")),
        (197, 0, 1, ("warning", "smart_counter_rising")),
        (198, 0, 1, ("warning", "smart_counter_rising")),
        (188, 12, 12, ("ok", None)),
        (188, 12, 40, ("warning", "smart_command_timeouts")),
        (5, 8, 3, ("ok", None)),  # a counter that went down is no rise
    ],
)
def test_baseline_table(
    attr_id: int, before: int, after: int, expected: tuple[str, str | None]
) -> None:
    name = "sata-hdd-healthy-packed-188-seagate-exos-x16.json"
    base = {"attr_5": 0, "attr_187": 0, "attr_188": 12, "attr_197": 0, "attr_198": 0}
    base[f"attr_{attr_id}"] = before
    result = interpret("sda", set_attr(smart_json(name, serial_number="X"), attr_id, after), 0,
                       base)
    assert result is not None
    assert (result.states[0].status, result.states[0].failure) == expected


NVME = "nvme-spare-93-worn-51pct-intel-p3700.json"


@pytest.mark.parametrize(
    ("changes", "baseline", "expected"),
    [
        ({}, {"media_errors": 0}, ("ok", None)),
        ({"media_errors": 3}, {"media_errors": 0}, ("failed", "nvme_media_errors")),
        ({"media_errors": 3}, {"media_errors": 3}, ("ok", None)),
        ({"critical_warning": 0x02}, {}, ("failed", "nvme_critical_warning")),
        ({"available_spare": 9}, {}, ("warning", "nvme_spare_low")),  # threshold 10
        ({"available_spare": 10}, {}, ("ok", None)),
        ({"percentage_used": 90}, {}, ("warning", "nvme_wear")),
        ({"percentage_used": 89}, {}, ("ok", None)),
    ],
)
def test_nvme_table(
    changes: dict[str, int], baseline: dict[str, int], expected: tuple[str, str | None]
) -> None:
    data = smart_json(NVME, serial_number="N1")
    data["nvme_smart_health_information_log"].update(changes)
    result = interpret("nvme0", data, 0, baseline)
    assert result is not None
    assert (result.states[0].status, result.states[0].failure) == expected
    values = {r.metric: r.value for r in result.readings}
    assert values["smart.available_spare_threshold"] == 10


def _ata_selftests(*statuses: dict[str, Any]) -> dict[str, Any]:
    """An ATA disk whose self-test log lists ``statuses``, newest first."""
    data = smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="W1")
    data["ata_smart_self_test_log"] = {"standard": {"revision": 1, "count": len(statuses),
        "table": [{"type": {"value": 1, "string": "Short offline"}, "status": s,
                   "lifetime_hours": 1000 - i} for i, s in enumerate(statuses)]}}
    return data


PASSED = {"value": 0, "string": "Completed without error", "passed": True}
READ_FAILURE = {"value": 119, "string": "Completed: read failure", "passed": False}


@pytest.mark.parametrize(
    ("data", "expected", "reading"),
    [
        (_ata_selftests(PASSED), ("ok", None), 0.0),
        (_ata_selftests(READ_FAILURE, PASSED), ("failed", "selftest_failed"), 1.0),
        (_ata_selftests(PASSED, READ_FAILURE), ("ok", None), 0.0),  # a newer test passed
    ],
)
def test_ata_selftest(data: dict[str, Any], expected: tuple[str, str | None],
                      reading: float) -> None:
    result = interpret("sda", data, 0)
    assert result is not None
    assert (result.states[0].status, result.states[0].failure) == expected
    assert {r.metric: r.value for r in result.readings}["smart.selftest_failed"] == reading


@pytest.mark.parametrize(("value", "expected"), [(0, "ok"), (7, "failed"), (1, "ok")])
def test_nvme_selftest(value: int, expected: str) -> None:
    data = smart_json(NVME, serial_number="N2")
    data["nvme_self_test_log"] = {"current_self_test_operation": {"value": 0}, "table": [
        {"self_test_code": {"value": 1, "string": "Short"},
         "self_test_result": {"value": value, "string": "Completed: failed segments"},
         "segment": 2, "power_on_hours": 100}]}
    result = interpret("nvme0", data, 0)
    assert result is not None
    assert result.states[0].status == expected


class RecordingRoot(Root):
    """A replay root that notes which smartctl calls it answered, and when."""

    def __init__(self, path: Path, clock: list[float]) -> None:
        super().__init__(path)
        self.clock = clock
        self.calls: list[tuple[float, tuple[str, ...]]] = []

    def cmd_output(self, tool: str, args: Sequence[str]) -> CmdResult | None:
        self.calls.append((self.clock[0], tuple(args)))
        return super().cmd_output(tool, args)


def test_reads_are_staggered_over_the_interval_and_standby_is_not_woken(
    replay_root: Callable[..., Path]
) -> None:
    disks = {dev: smart_json("sata-hdd-healthy-wdc-re4.json", serial_number=f"S-{dev}")
             for dev in ("sda", "sdb", "sdc")}
    disks["nvme0"] = smart_json("nvme-healthy-samsung-970.json", serial_number="S-nvme0")
    clock = [0.0]
    root = RecordingRoot(replay_root(disks), clock)
    p = smart(MemoryState(), lambda: clock[0])
    assert len(p.collect(root).states) == 4  # the first collection reads every disk
    (root.path / "cmd" / "smartctl" / "sdb.json").write_text(json.dumps(STANDBY))
    for t in range(30, 2701, 30):  # a 30 s agent interval for 45 minutes
        clock[0] = float(t)
        result = p.collect(root)
    reads = {}
    for at, args in root.calls:
        reads.setdefault(args[-1], []).append(at)
    # disk k of 4 due again at 900 * (1 + k/4), then every 900 s (read at the first 30 s
    # collection at or after that): never all at once
    assert reads == {"/dev/nvme0": [0.0, 900.0, 1800.0, 2700.0],
                     "/dev/sda": [0.0, 1140.0, 2040.0], "/dev/sdb": [0.0, 1350.0, 2250.0],
                     "/dev/sdc": [0.0, 1590.0, 2490.0]}
    args = {a[-1]: a for _, a in root.calls}
    assert args["/dev/sda"] == ("--json", "-x", "-n", "standby", "/dev/sda")
    assert args["/dev/nvme0"] == ("--json", "-x", "/dev/nvme0")  # -n is not for NVMe
    # sdb went to sleep: not woken, its last answer is still reported
    assert ("disk:S-sdb", "ok", None) in judged(result)


def test_once_prints_a_failed_selftest_event(
    tmp_path: Path, replay_root: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = replay_root({"sda": _ata_selftests(READ_FAILURE)})
    config = tmp_path / "agent.yaml"
    config.write_text("site: iad1\nhost: web-01\nprobes: [smart]\n")
    assert main(["once", "--config", str(config), "--root", str(root)]) == 0
    events = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if "/event" in ln]
    assert [(e["payload"]["component"], e["payload"]["failure"]) for e in events] == [
        ("disk:W1", "selftest_failed")]
