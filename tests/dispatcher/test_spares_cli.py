"""`hourglass spares import|adjust|list` against a real database: the ledger and the alerts."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from hourglass.cli import main
from tests.dispatcher.world import setup_fleet


@pytest.fixture
def url(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with site iad1, and the CLI pointed at it."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
    monkeypatch.setenv("HOURGLASS_DATABASE_URL", pg_url)
    return pg_url


def ledger(url: str) -> list[tuple[str, int, int, str]]:
    """(part, delta, count_after, reason) of every movement, in order."""
    with psycopg.connect(url) as conn:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
            "SELECT part, delta, count_after, reason FROM spare_movements ORDER BY id")]


def test_import_csv_then_yaml_records_only_changes(url: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "stock.csv"
    csv_file.write_text("site,part,kind,count\niad1,ST8000NM000A,disk,4\niad1,PWS-1K62A,psu,1\n")
    assert main(["spares", "import", str(csv_file)]) == 0
    yml = tmp_path / "stock.yaml"
    yml.write_text("spares:\n  - {site: iad1, part: ST8000NM000A, kind: disk, count: 6}\n"
                   "  - {site: iad1, part: PWS-1K62A, kind: psu, count: 1}\n")
    assert main(["spares", "import", str(yml)]) == 0
    assert ledger(url) == [("ST8000NM000A", 4, 4, "import"), ("PWS-1K62A", 1, 1, "import"),
                           ("ST8000NM000A", 2, 6, "import")]
    with psycopg.connect(url) as conn:  # the psu came in at the threshold (1 left): one alert
        assert conn.execute("SELECT part, available, threshold FROM spare_alerts").fetchall() \
            == [("PWS-1K62A", 1, 1)]


def test_adjust_and_list(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.csv"
    f.write_text("site,part,kind,count\niad1,ST8000NM000A,disk,3\n")
    assert main(["spares", "import", str(f)]) == 0
    assert main(["spares", "adjust", "--site", "iad1", "--part", "ST8000NM000A",
                 "--delta", "-2", "--reason", "RMA batch"]) == 0
    assert ledger(url)[-1] == ("ST8000NM000A", -2, 1, "RMA batch")
    with psycopg.connect(url) as conn:  # 3 -> 1 crossed the threshold of 1
        assert conn.execute("SELECT count(*) FROM spare_alerts").fetchone() == (1,)
    capsys.readouterr()
    assert main(["spares", "list", "--site", "iad1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SITE", "PART", "KIND", "ON", "SHELF", "RESERVED", "AVAILABLE",
                                "LOCATION"]
    assert lines[1].split() == ["iad1", "ST8000NM000A", "disk", "1", "0", "1", "-", "LOW"]


def test_a_spare_location_is_set_imported_and_listed(url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.csv"
    f.write_text("site,part,kind,count,location\n"
                 "iad1,ST8000NM000A,disk,3,\"Store room B, bin 12\"\n")
    assert main(["spares", "import", str(f)]) == 0
    capsys.readouterr()
    assert main(["spares", "list"]) == 0
    assert "Store room B, bin 12" in capsys.readouterr().out
    assert main(["spares", "locate", "--site", "iad1", "--part", "ST8000NM000A",
                 "--location", "Cage 2, shelf 1"]) == 0
    assert main(["spares", "list"]) == 0
    assert "Cage 2, shelf 1" in capsys.readouterr().out
    assert main(["spares", "locate", "--site", "iad1", "--part", "ST8000NM000A",
                 "--location", "x" * 65]) == 2
    assert "too long" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "suffix", "says"), [
    ("site,part,kind,count\niad1,X1,disk,-1\n", ".csv", "line 2.count: -1 is out of range"),
    ("site,part,kind,count\niad1,X1,toaster,1\n", ".csv", "line 2.kind: 'toaster'"),
    ("site,part,kind\niad1,X1,disk\n", ".csv", "missing count"),
    ("- {site: nowhere, part: X1, kind: disk, count: 1}\n", ".yaml", "unknown site 'nowhere'"),
    ("- {site: iad1, part: X1, kind: disk, count: 1, colour: red}\n", ".yaml",
     "spares[0]: unknown key(s) colour"),
])
def test_bad_files_are_refused_with_file_and_row(url: str, tmp_path: Path, content: str,
                                                 suffix: str, says: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    assert main(["spares", "import", str(f)]) == 2
    assert says in capsys.readouterr().err
    assert ledger(url) == []


def test_adjust_refusals(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spares", "adjust", "--site", "iad1", "--part", "NOPE", "--delta", "1"]) == 2
    assert "hourglass spares import" in capsys.readouterr().err
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO spares VALUES ('iad1', 'D1', 'disk', 1)")
    assert main(["spares", "adjust", "--site", "iad1", "--part", "D1", "--delta", "-2"]) == 2
    assert "cannot remove 2" in capsys.readouterr().err


def test_ledger_is_append_only(url: str, tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("site,part,kind,count\niad1,D1,disk,2\n")
    assert main(["spares", "import", str(f)]) == 0
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE spare_movements SET delta = 99")


def test_fleet_file_counts_reach_the_ledger_too(pg_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOURGLASS_DATABASE_URL", pg_url)
    fleet = tmp_path / "fleet.yaml"
    site = ("sites: [{id: iad1, name: A, walk_minutes: {A: 4, '*': 7}, spare_pickup_minutes: 2,"
            " spares_low_stock: 0}]\n")
    fleet.write_text(site + "spares: [{site: iad1, part: D1, kind: disk, count: 4}]\n")
    assert main(["load", str(fleet)]) == 0
    assert main(["load", str(fleet)]) == 0  # unchanged: nothing new in the ledger
    fleet.write_text(site + "spares: [{site: iad1, part: D1, kind: disk, count: 3}]\n")
    assert main(["load", str(fleet)]) == 0
    assert [r[:3] for r in ledger(pg_url)] == [("D1", 4, 4), ("D1", -1, 3)]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT walk_minutes, spare_pickup_minutes, spares_low_stock"
                            " FROM sites").fetchone() == ({"A": 4.0, "*": 7.0}, 2.0, 0)


@pytest.mark.parametrize(("site", "says"), [
    ("walk_minutes: 5", "sites[0].walk_minutes: expected a mapping"),
    ("walk_minutes: {A: -1}", "sites[0].walk_minutes.A: must be >= 0"),
    ("spares_low_stock: -1", "sites[0].spares_low_stock: expected a whole number >= 0"),
    ("spare_pickup_minutes: soon", "sites[0].spare_pickup_minutes: expected a number"),
])
def test_bad_site_scoring_keys_name_the_key(tmp_path: Path, site: str, says: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"sites: [{{id: iad1, name: A, {site}}}]\n")
    assert main(["load", str(fleet)]) == 2
    assert says in capsys.readouterr().err
