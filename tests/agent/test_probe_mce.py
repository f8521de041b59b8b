"""MCE probe on rasdaemon databases built from ras-record.c's schema: fatal and repeated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.cli import main
from agent.probes import Limits, MemoryState
from agent.root import Root
from tests.agent.test_probe_edac import NOW, RAS, Clock, probe, ras_db

# scenario -> {component: (mce.corrected_count, status, failure, detail)}
CASES = {
    "empty": ((), {}),
    "mce-corrected-repeated": (("mce-corrected-repeated",), {
        "cpu:0": (2.0, "ok", None, None),
        "cpu:1": (12.0, "warning", "mce_corrected_repeated",
                  "12 corrected machine checks on bank 7 "
                  "(Intel Integrated Memory Controller) in 24 h"),
    }),
    "mce-fatal": (("mce-fatal",), {
        "cpu:0": (0.0, "failed", "mce_fatal",
                  "uncorrected machine check on cpu 4 bank 4 (Internal Parity Error), "
                  "processor context corrupt"),
    }),
    "both": (("mce-corrected-repeated", "mce-fatal"), {
        "cpu:0": (2.0, "failed", "mce_fatal",
                  "uncorrected machine check on cpu 4 bank 4 (Internal Parity Error), "
                  "processor context corrupt"),
        "cpu:1": (12.0, "warning", "mce_corrected_repeated",
                  "12 corrected machine checks on bank 7 "
                  "(Intel Integrated Memory Controller) in 24 h"),
    }),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mce_states(tmp_path: Path, case: str) -> None:
    scenarios, expected = CASES[case]
    ras_db(tmp_path / "cmd" / "ras-mc_event.db", *scenarios)
    result = probe("mce", Clock(NOW), MemoryState()).collect(Root(tmp_path))
    values = {r.component: r.value for r in result.readings if r.metric == "mce.corrected_count"}
    got = {s.id: (values[s.id], s.status, s.failure, s.detail) for s in result.states}
    assert got == expected


def test_threshold_window_and_incremental_reads(tmp_path: Path) -> None:
    db = ras_db(tmp_path / "cmd" / "ras-mc_event.db", "mce-corrected-repeated")
    clock = Clock(NOW)
    p = probe("mce", clock, MemoryState(), Limits(mce_corrected_threshold=13))
    states = {s.id: s.status for s in p.collect(Root(tmp_path)).states}
    assert states == {"cpu:0": "ok", "cpu:1": "ok"}  # 12 is below 13
    con = sqlite3.connect(db)
    con.executescript((RAS / "mce-fatal.sql").read_text())
    con.close()
    result = p.collect(Root(tmp_path))
    assert {s.id: s.failure for s in result.states} == {"cpu:0": "mce_fatal", "cpu:1": None}
    assert result.evidence["cpu:0"]["last_status"] == "0xb200000000000402"
    clock.t += 86400  # a day later the records have left the window; the counts stay
    result = p.collect(Root(tmp_path))
    assert {s.id: s.status for s in result.states} == {"cpu:0": "ok", "cpu:1": "ok"}
    assert {r.component: r.value for r in result.readings} == {"cpu:0": 2.0, "cpu:1": 12.0}


def test_no_database_no_result(tmp_path: Path) -> None:
    result = probe("mce", Clock(NOW), MemoryState()).collect(Root(tmp_path))
    assert (result.readings, result.states) == ((), ())


def test_once_prints_the_fatal_mce_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    ras_db(root / "cmd" / "ras-mc_event.db", "mce-fatal")
    config = tmp_path / "agent.yaml"
    # the fixture's record is from 2026-11-23: a window of ten years keeps it in
    config.write_text("site: iad1\nhost: web-01\nprobes: [mce]\nlimits:\n  ecc_window_s: 3.2e8\n")
    assert main(["once", "--config", str(config), "--root", str(root)]) == 0
    events = [ln for ln in capsys.readouterr().out.splitlines() if "/event" in ln]
    assert len(events) == 1
    assert '"failure": "mce_fatal"' in events[0]
