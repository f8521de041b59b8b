"""EDAC (DIMM ECC) and mdstat (software RAID) probes on captured fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.probes import ProbeContext, default_registry
from agent.probes.mdstat import judge, parse
from agent.root import Root
from tests.agent.conftest import MDSTAT, SYSFS_ROOT


def test_edac_csrow_layout() -> None:
    (probe,) = default_registry().build(["edac"], ProbeContext("web-01"))
    result = probe.collect(Root(SYSFS_ROOT))
    values = {(r.component, r.metric): r.value for r in result.readings}
    assert values[("dimm:mc0csrow0channel0", "edac.ue_count")] == 2
    assert values[("dimm:mc0csrow0channel0", "edac.ce_count")] == 0
    assert values[("host:web-01", "edac.mc0.ue_noinfo")] == 6
    assert values[("host:web-01", "edac.mc0.ce_noinfo")] == 2
    states = {s.id: s for s in result.states}
    assert len(states) == 6
    assert all((s.status, s.failure) == ("failed", "ecc_uncorrectable") for s in states.values())
    # csrow2 counts uncorrectable errors per row only: both of its DIMMs are suspects
    assert states["dimm:mc0csrow2channel1"].detail == (
        "5 uncorrectable errors on csrow2, channel unknown")


def test_edac_dimm_layout_healthy(replay_root: Callable[..., Path]) -> None:
    base = "sys/devices/system/edac/mc/mc0/dimm0"
    root = Root(replay_root(files={f"{base}/dimm_label": "CPU_SrcID#0_MC#0_Chan#0_DIMM#0\n",
                                   f"{base}/dimm_ce_count": "7\n", f"{base}/dimm_ue_count": "0\n",
                                   f"{base}/size": "32768\n"}))
    (probe,) = default_registry().build(["edac"], ProbeContext("h"))
    result = probe.collect(root)
    (state,) = result.states
    assert (state.id, state.status) == ("dimm:CPU_SrcID_0_MC_0_Chan_0_DIMM_0", "ok")
    assert result.inventory[0].size_bytes == 32 * 1024**3


def test_mdstat_judgements() -> None:
    arrays = {a.name: a for a in parse(MDSTAT.read_text())}
    assert len(arrays) == 18
    assert judge(arrays["md6"])[:2] == ("failed", "raid_degraded")
    assert judge(arrays["md7"])[:2] == ("failed", "raid_degraded")
    assert judge(arrays["md9"])[:2] == ("warning", "raid_member_faulty")
    assert judge(arrays["md3"]) == ("ok", None, None)
    assert judge(arrays["md10"]) == ("ok", None, None)  # raid0 has no [n/m]
    assert arrays["md6"].sync == ("recovery", 8.5)
    assert arrays["md6"].faulty == ["sdb2"]
    assert arrays["md42"].sync == ("reshape", 56.1)


def test_mdstat_probe(replay_root: Callable[..., Path]) -> None:
    (probe,) = default_registry().build(["mdstat"], ProbeContext("h"))
    result = probe.collect(Root(replay_root(mdstat=True)))
    values = {(r.component, r.metric): r.value for r in result.readings}
    assert values[("raid:md7", "md.disks_wanted")] == 4
    assert values[("raid:md7", "md.disks_working")] == 3
    assert values[("raid:md7", "md.disks_faulty")] == 1
    assert values[("raid:md6", "md.sync_percent")] == 8.5
    assert {s.id for s in result.states if s.status == "failed"} == {
        "raid:md6", "raid:md7", "raid:md42"}


def test_no_sources_no_results(tmp_path: Path) -> None:
    probes = default_registry().build(
        ["edac", "mdstat", "smart", "mce", "nic", "hwmon"], ProbeContext("h"))
    for probe in probes:
        result = probe.collect(Root(tmp_path))
        assert (result.readings, result.states, result.inventory) == ((), (), ())
