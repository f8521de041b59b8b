"""EDAC probe: both sysfs layouts, counts kept across reboots, the 24 h correctable rate,
uncorrectable errors, and rasdaemon's database (built from ras-record.c's schema)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import main
from agent.probes import Limits, MemoryState, ProbeContext, ProbeResult, default_registry
from agent.probes.base import Probe
from agent.root import Root
from tests.agent.conftest import FIXTURES

RAS = FIXTURES / "rasdaemon"
#: The tests' "now": the rasdaemon fixtures are stamped relative to it.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
DIMM = "sys/devices/system/edac/mc/mc0/dimm0"
CSROW = "sys/devices/system/edac/mc/mc0/csrow0"
BOOT = "proc/sys/kernel/random/boot_id"
LABEL = "CPU_SrcID#0_MC#0_Chan#0_DIMM#0"
CID = "dimm:CPU_SrcID_0_MC_0_Chan_0_DIMM_0"


class Clock:
    """A settable wall clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ras_db(dest: Path, *scenarios: str) -> Path:
    """A rasdaemon database: the real schema plus the named scenario rows."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(dest)
    db.executescript((RAS / "schema.sql").read_text())
    for name in scenarios:
        db.executescript((RAS / f"{name}.sql").read_text())
    db.commit()
    db.close()
    return dest


def probe(name: str, clock: Clock, state: MemoryState, limits: Limits | None = None) -> Probe:
    """One probe with an injected wall clock and state."""
    ctx = ProbeContext("h", wall=clock, state=state, limits=limits or Limits())
    (p,) = default_registry().build([name], ctx)
    return p


def write(root: Path, files: dict[str, str]) -> None:
    """Write sysfs-style files under a replay root."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def dimm_files(ce: int, ue: int, boot: str = "boot-1") -> dict[str, str]:
    """The newer layout's files of one DIMM (Documentation/admin-guide/ras.rst)."""
    return {
        f"{DIMM}/dimm_label": LABEL + "\n",
        f"{DIMM}/dimm_ce_count": f"{ce}\n",
        f"{DIMM}/dimm_ue_count": f"{ue}\n",
        f"{DIMM}/size": "32768\n",
        BOOT: boot + "\n",
    }


def csrow_files(ce: int, ue: int, boot: str = "boot-1") -> dict[str, str]:
    """The older layout's files of one channel of one chip-select row."""
    return {
        f"{CSROW}/ch0_dimm_label": LABEL + "\n",
        f"{CSROW}/ch0_ce_count": f"{ce}\n",
        f"{CSROW}/ch0_ue_count": f"{ue}\n",
        f"{CSROW}/ue_count": f"{ue}\n",
        BOOT: boot + "\n",
    }


def seen(result: ProbeResult, cid: str = CID) -> tuple[float | None, float | None, str, str | None]:
    """(ce_count, ue_count, status, failure) of one DIMM."""
    values = {r.metric: r.value for r in result.readings if r.component == cid}
    (state,) = [s for s in result.states if s.id == cid]
    return values.get("edac.ce_count"), values.get("edac.ue_count"), state.status, state.failure


# (sysfs files per collection, hours between collections, expected after each collection)
CASES = {
    "healthy": ([(0, 0), (0, 0)], 1.0, [(0, 0, "ok", None), (0, 0, "ok", None)]),
    "errors before the agent are a baseline, not a rate": (
        [(500, 0), (500, 0)], 1.0, [(500, 0, "ok", None), (500, 0, "ok", None)]),
    "24 new correctable errors in a day warn": (
        [(5, 0), (15, 0), (29, 0)], 6.0,
        [(5, 0, "ok", None), (15, 0, "ok", None), (29, 0, "warning", "ecc_correctable_rate")]),
    "23 in a day do not": ([(5, 0), (28, 0)], 6.0, [(5, 0, "ok", None), (28, 0, "ok", None)]),
    "the rate forgets errors older than the window": (
        [(0, 0), (30, 0), (30, 0)], 24.5,
        [(0, 0, "ok", None), (30, 0, "warning", "ecc_correctable_rate"), (30, 0, "ok", None)]),
    "an uncorrectable error fails the DIMM": (
        [(0, 0), (0, 1)], 1.0, [(0, 0, "ok", None), (0, 1, "failed", "ecc_uncorrectable")]),
}


@pytest.mark.parametrize("layout", [dimm_files, csrow_files], ids=["dimm", "csrow"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_counts_and_states(
    tmp_path: Path, case: str, layout: Callable[..., dict[str, str]]
) -> None:
    counts, hours, expected = CASES[case]
    clock, state = Clock(NOW), MemoryState()
    p = probe("edac", clock, state)
    got = []
    for ce, ue in counts:
        write(tmp_path, layout(ce, ue))
        got.append(seen(p.collect(Root(tmp_path))))
        clock.t += hours * 3600
    assert got == expected


def test_counts_survive_a_reboot_and_an_agent_restart(tmp_path: Path) -> None:
    clock, state = Clock(NOW), MemoryState()
    write(tmp_path, dimm_files(10, 0, boot="boot-1"))
    assert seen(probe("edac", clock, state).collect(Root(tmp_path)))[:2] == (10, 0)
    # the host reboots: the kernel counts from 0 again; a new agent process reads the state
    clock.t += 600
    write(tmp_path, dimm_files(3, 0, boot="boot-2"))
    again = probe("edac", clock, state)
    assert seen(again.collect(Root(tmp_path))) == (13, 0, "ok", None)
    # a reboot whose counter already passed the old value is caught by the boot id
    write(tmp_path, dimm_files(20, 0, boot="boot-3"))
    assert seen(again.collect(Root(tmp_path))) == (33, 0, "ok", None)
    # 3 + 20 correctable errors since the baseline, within 24 h: the rate trips at 24
    write(tmp_path, dimm_files(21, 0, boot="boot-3"))
    assert seen(again.collect(Root(tmp_path))) == (34, 0, "warning", "ecc_correctable_rate")


def test_threshold_is_configurable(tmp_path: Path) -> None:
    clock, state = Clock(NOW), MemoryState()
    p = probe("edac", clock, state, Limits(ecc_ce_threshold=3))
    write(tmp_path, dimm_files(0, 0))
    p.collect(Root(tmp_path))
    write(tmp_path, dimm_files(3, 0))
    assert seen(p.collect(Root(tmp_path)))[2:] == ("warning", "ecc_correctable_rate")


def test_rasdaemon_rate_and_window(tmp_path: Path) -> None:
    ras_db(tmp_path / "cmd" / "ras-mc_event.db", "mc-corrected-rate")
    write(tmp_path, dimm_files(3, 0))  # Chan#0 is in sysfs too; Chan#1 only in rasdaemon
    result = probe("edac", Clock(NOW), MemoryState()).collect(Root(tmp_path))
    states = {s.id: (s.status, s.failure, s.detail) for s in result.states}
    assert states == {
        # 3 errors, all yesterday morning, outside the window
        CID: ("ok", None, None),
        # 30 errors in the last 24 h (the Info record is not one)
        "dimm:CPU_SrcID_0_MC_0_Chan_1_DIMM_0": (
            "warning", "ecc_correctable_rate", "30 correctable ECC errors in 24 h"),
    }
    assert result.evidence["dimm:CPU_SrcID_0_MC_0_Chan_1_DIMM_0"]["ce_in_window"] == 30


def test_rasdaemon_uncorrectable_fails_and_is_read_incrementally(tmp_path: Path) -> None:
    db = ras_db(tmp_path / "cmd" / "ras-mc_event.db")
    clock = Clock(NOW)
    p = probe("edac", clock, MemoryState())
    assert p.collect(Root(tmp_path)).states == ()
    con = sqlite3.connect(db)
    con.executescript((RAS / "mc-uncorrected.sql").read_text())
    con.close()
    (state,) = p.collect(Root(tmp_path)).states
    assert (state.id, state.status, state.failure, state.detail) == (
        "dimm:CPU_SrcID_1_MC_0_Chan_2_DIMM_1", "failed", "ecc_uncorrectable",
        "1 uncorrectable ECC errors")
    clock.t += 86400  # a day later the record has left the window
    assert p.collect(Root(tmp_path)).states[0].status == "ok"


def test_once_prints_the_failure_event_on_the_first_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    write(root, dimm_files(0, 2))
    config = tmp_path / "agent.yaml"
    config.write_text("site: iad1\nhost: web-01\nprobes: [edac]\n")
    assert main(["once", "--config", str(config), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert '"failure": "ecc_uncorrectable"' in out
    assert '"kind": "event"' in out or "/event" in out
