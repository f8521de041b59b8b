"""NIC probe on /sys/class/net trees written from the kernel's documented layout
(Documentation/ABI/testing/sysfs-class-net): states judged against each port's history."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import MemoryState, ProbeContext, ProbeResult, default_registry
from agent.probes.base import Probe
from agent.root import Root
from agent.spool import Spool

NET = "sys/class/net"
PROC_NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
    " errs drop fifo colls carrier compressed\n"
    "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
    "  eno1: 5000 50 2 1 0 0 0 0 7000 70 3 4 0 0 0 0\n"
)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def port(
    root: Path, name: str = "eno1", *, carrier: int | None = 1, speed: int = 10000,
    admin_up: bool = True, errors: tuple[int, int] | None = (0, 0), device: bool = True,
) -> None:
    """Write one port's sysfs files; carrier None is the unreadable file of a down port."""
    base = root / NET / name
    base.mkdir(parents=True, exist_ok=True)
    files = {
        "operstate": "up" if carrier else "down",
        "speed": str(speed if carrier else -1),
        "flags": "0x1003" if admin_up else "0x1002",
        "address": "b4:96:91:00:00:01",
    }
    if carrier is not None:
        files["carrier"] = str(carrier)
    else:
        (base / "carrier").unlink(missing_ok=True)
    if device:
        files["device"] = "../../../0000:3b:00.0"
    if errors is not None:
        (base / "statistics").mkdir(exist_ok=True)
        for stat, value in (("rx_errors", errors[0]), ("tx_errors", errors[1]),
                            ("rx_dropped", 7), ("rx_bytes", 5000), ("tx_bytes", 7000),
                            ("tx_dropped", 0)):
            (base / "statistics" / stat).write_text(f"{value}\n")
    for rel, text in files.items():
        (base / rel).write_text(text + "\n")


def nic(clock: Clock, state: MemoryState | Spool) -> Probe:
    """The nic probe with an injected clock and state."""
    (p,) = default_registry().build(["nic"], ProbeContext("h", monotonic=clock, state=state))
    return p


def judged(result: ProbeResult, cid: str = "nic:eno1") -> tuple[str, str | None]:
    """(status, failure) of one port."""
    (state,) = [s for s in result.states if s.id == cid]
    return state.status, state.failure


# each step: (port files, minutes after the previous step, expected (status, failure))
Step = tuple[dict[str, object], float, tuple[str, str | None]]
CASES: dict[str, list[Step]] = {
    "healthy": [({}, 0, ("ok", None)), ({}, 1, ("ok", None))],
    "a port that never had link is not a failure": [
        ({"carrier": 0}, 0, ("ok", None)), ({"carrier": None}, 1, ("ok", None))],
    "carrier lost on a port that had link fails": [
        ({}, 0, ("ok", None)), ({"carrier": 0}, 1, ("failed", "nic_carrier_lost")),
        ({"carrier": None}, 1, ("failed", "nic_carrier_lost")), ({}, 1, ("ok", None))],
    "taken down on purpose is fine": [
        ({}, 0, ("ok", None)), ({"carrier": None, "admin_up": False}, 1, ("ok", None))],
    "speed below its usual warns": [
        ({}, 0, ("ok", None)), ({"speed": 1000}, 1, ("warning", "nic_speed_low")),
        ({"speed": 10000}, 1, ("ok", None))],
    "errors rising warns, then calms after an hour": [
        ({"errors": (0, 0)}, 0, ("ok", None)), ({"errors": (6, 3)}, 10, ("ok", None)),
        ({"errors": (8, 3)}, 10, ("warning", "nic_errors_rising")),
        ({"errors": (8, 3)}, 61, ("ok", None))],
    "a counter reset is not a rise": [
        ({"errors": (500, 0)}, 0, ("ok", None)), ({"errors": (2, 0)}, 1, ("ok", None))],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nic_states(tmp_path: Path, case: str) -> None:
    clock, state = Clock(), MemoryState()
    p = nic(clock, state)
    got, expected = [], []
    for files, minutes, want in CASES[case]:
        clock.t += minutes * 60
        port(tmp_path, **files)  # type: ignore[arg-type]
        got.append(judged(p.collect(Root(tmp_path))))
        expected.append(want)
    assert got == expected


def test_readings_exact_and_virtual_devices_skipped(tmp_path: Path) -> None:
    port(tmp_path, errors=(2, 3))
    port(tmp_path, "br0", device=False)
    (tmp_path / NET / "lo").mkdir(parents=True)
    (tmp_path / NET / "lo" / "operstate").write_text("unknown\n")
    result = nic(Clock(), MemoryState()).collect(Root(tmp_path))
    values = {(r.component, r.metric): r.value for r in result.readings}
    assert values == {
        ("nic:eno1", "nic.rx_bytes"): 5000.0, ("nic:eno1", "nic.tx_bytes"): 7000.0,
        ("nic:eno1", "nic.rx_errors"): 2.0, ("nic:eno1", "nic.tx_errors"): 3.0,
        ("nic:eno1", "nic.rx_dropped"): 7.0, ("nic:eno1", "nic.tx_dropped"): 0.0,
        ("nic:eno1", "nic.up"): 1.0, ("nic:eno1", "nic.carrier"): 1.0,
        ("nic:eno1", "nic.speed_mbps"): 10000.0,
    }
    assert [c.attrs for c in result.inventory] == [
        {"mac": "b4:96:91:00:00:01", "speed_mbps": 10000}]


def test_counters_fall_back_to_proc_net_dev(tmp_path: Path) -> None:
    port(tmp_path, errors=None)
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "dev").write_text(PROC_NET_DEV)
    result = nic(Clock(), MemoryState()).collect(Root(tmp_path))
    values = {r.metric: r.value for r in result.readings}
    assert (values["nic.rx_errors"], values["nic.tx_errors"], values["nic.tx_dropped"]) == (
        2.0, 3.0, 4.0)


def test_had_link_survives_an_agent_restart_in_the_spool(tmp_path: Path) -> None:
    root = tmp_path / "root"
    spool = Spool(tmp_path / "spool.db", "h")
    port(root)
    nic(Clock(), spool).collect(Root(root))
    spool.close()
    port(root, carrier=None)  # the cable is pulled while the agent is restarting
    again = Spool(tmp_path / "spool.db", "h")
    assert judged(nic(Clock(), again).collect(Root(root))) == ("failed", "nic_carrier_lost")
    again.close()
