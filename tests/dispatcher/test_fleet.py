"""The fleet file: table-driven validation (file and key path in every error), and loading
into a real PostgreSQL twice without doubling anything."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.fleet import (
    END_OF_DAY,
    Contract,
    Fleet,
    FleetError,
    Host,
    Site,
    load_fleet_file,
    parse_fleet,
)
from dispatcher.store.fleet import apply_fleet
from schemas.states import StaffRole

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "fleet.example.yaml"
SRC = "fleet.yaml"


def valid() -> dict[str, Any]:
    """A small fleet that passes; each case below breaks one thing in a copy."""
    return {
        "sites": [
            {"id": "iad1", "name": "Ashburn 1", "timezone": "America/New_York",
             "manager": "t-maria"},
            {"id": "lon1", "name": "London 1"},
        ],
        "technicians": [
            {"id": "t-ana", "name": "Ana", "site": "iad1", "role": "technician",
             "skills": ["disk", "memory"], "shift": "07:00-19:00"},
            {"id": "t-maria", "name": "Maria", "site": "iad1", "role": "manager"},
        ],
        "customers": [
            {"id": "acme", "name": "Acme", "account_manager": "am-lee",
             "contract": {"sla_minutes": 60, "credit_percent": 5},
             "hosts": [
                 {"id": "web-01", "site": "iad1", "monthly_fee": 450.0},
                 {"id": "web-02", "site": "lon1", "room": "A", "rack": "r1", "unit": 7,
                  "monthly_fee": 450, "currency": "EUR"},
             ]},
            {"id": "globex", "name": "Globex", "hosts": [
                {"id": "gx-01", "site": "lon1", "monthly_fee": 10}]},
        ],
        "spares": [{"site": "iad1", "part": "ST8000", "kind": "disk", "count": 4}],
    }


Edit = Callable[[dict[str, Any]], object]


def _set(*path: str | int, value: Any) -> Edit:
    """An edit that sets one key (creating nothing on the way)."""
    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return edit


def _drop(*path: str | int) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return edit


def _append(section: str, item: dict[str, Any]) -> Edit:
    return lambda d: d[section].append(item)


HOST1 = ("customers", 0, "hosts", 1)
TECH0 = ("technicians", 0)
CONTRACT = ("customers", 0, "contract")

# (edit, key path the message must name, words the reason must contain)
ERRORS: list[tuple[str, Edit, str, str]] = [
    ("unknown top key", _set("sitez", value=[]), "sitez", "unknown key"),
    ("section not a list", _set("customers", value={"id": "x"}), "customers", "expected a list"),
    ("unknown site key", _set("sites", 0, "colour", value="red"), "sites[0].colour",
     "unknown key"),
    ("site without name", _drop("sites", 1, "name"), "sites[1].name", "missing required key"),
    ("site name null", _set("sites", 1, "name", value=None), "sites[1].name",
     "missing required key"),
    ("bad time zone", _set("sites", 0, "timezone", value="Mars/Olympus"), "sites[0].timezone",
     "unknown time zone"),
    ("manager not a technician", _set("sites", 0, "manager", value="t-nobody"),
     "sites[0].manager", "unknown technician 't-nobody'"),
    ("duplicate site", _append("sites", {"id": "iad1", "name": "again"}), "sites[2].id",
     "duplicate site id 'iad1' (first at sites[0].id)"),
    ("site id with space", _set("sites", 1, "id", value="lon 1"), "sites[1].id",
     "not a valid id"),
    ("site id a number", _set("sites", 1, "id", value=101), "sites[1].id", "not a valid id"),
    ("technician without site", _drop(*TECH0, "site"), "technicians[0].site",
     "missing required key"),
    ("technician at unknown site", _set(*TECH0, "site", value="sfo9"), "technicians[0].site",
     "unknown site 'sfo9'"),
    ("technician without id", _drop(*TECH0, "id"), "technicians[0].id", "missing required key"),
    ("bad role", _set(*TECH0, "role", value="boss"), "technicians[0].role",
     "unknown value 'boss'"),
    ("bad skill", _set(*TECH0, "skills", value=["disk", "plumbing"]), "technicians[0].skills[1]",
     "unknown value 'plumbing'"),
    ("skills not a list", _set(*TECH0, "skills", value="disk"), "technicians[0].skills",
     "expected a list"),
    ("skill twice", _set(*TECH0, "skills", value=["disk", "disk"]), "technicians[0].skills",
     "listed twice"),
    ("shift without leading zero", _set(*TECH0, "shift", value="7:00-19:00"),
     "technicians[0].shift", "not a shift"),
    ("shift hour 25", _set(*TECH0, "shift", value="25:00-07:00"), "technicians[0].shift",
     "no such time of day"),
    ("shift ends 24:30", _set(*TECH0, "shift", value="08:00-24:30"), "technicians[0].shift",
     "no such time of day"),
    ("empty shift", _set(*TECH0, "shift", value="07:00-07:00"), "technicians[0].shift",
     "starts when it ends"),
    ("shift read by YAML as 420", _set(*TECH0, "shift", value=420), "technicians[0].shift",
     "not a shift"),
    ("duplicate technician", _append("technicians", {"id": "t-ana", "name": "B", "site": "iad1"}),
     "technicians[2].id", "duplicate technician id 't-ana'"),
    ("customer without name", _drop("customers", 1, "name"), "customers[1].name",
     "missing required key"),
    ("unknown contract key", _set(*CONTRACT, "sla", value=30), "customers[0].contract.sla",
     "unknown key"),
    ("sla zero", _set(*CONTRACT, "sla_minutes", value=0), "customers[0].contract.sla_minutes",
     "must be > 0"),
    ("sla as text", _set(*CONTRACT, "sla_minutes", value="60"),
     "customers[0].contract.sla_minutes", "expected a number"),
    ("negative credit", _set(*CONTRACT, "credit_percent", value=-1),
     "customers[0].contract.credit_percent", "must be >= 0"),
    ("credit period zero", _set(*CONTRACT, "credit_period_minutes", value=0),
     "customers[0].contract.credit_period_minutes", "must be > 0"),
    ("cap too precise", _set(*CONTRACT, "credit_cap_percent", value=12.3456),
     "customers[0].contract.credit_cap_percent", "at most 3 decimal places"),
    ("duplicate customer", _append("customers", {"id": "acme", "name": "Acme again"}),
     "customers[2].id", "duplicate customer id"),
    ("host without fee", _drop(*HOST1, "monthly_fee"), "customers[0].hosts[1].monthly_fee",
     "missing required key"),
    ("host without site", _drop(*HOST1, "site"), "customers[0].hosts[1].site",
     "missing required key"),
    ("negative fee", _set(*HOST1, "monthly_fee", value=-5), "customers[0].hosts[1].monthly_fee",
     "must be >= 0"),
    ("fee as text", _set(*HOST1, "monthly_fee", value="450"),
     "customers[0].hosts[1].monthly_fee", "expected a number"),
    ("fee a boolean", _set(*HOST1, "monthly_fee", value=True),
     "customers[0].hosts[1].monthly_fee", "expected a number"),
    ("fee in fractions of a cent", _set(*HOST1, "monthly_fee", value=1.234),
     "customers[0].hosts[1].monthly_fee", "at most 2 decimal places"),
    ("fee not a number", _set(*HOST1, "monthly_fee", value=math.nan),
     "customers[0].hosts[1].monthly_fee", "finite"),
    ("host at unknown site", _set(*HOST1, "site", value="sfo9"), "customers[0].hosts[1].site",
     "unknown site 'sfo9'"),
    ("unknown host key", _set(*HOST1, "ip", value="10.0.0.1"), "customers[0].hosts[1].ip",
     "unknown key"),
    ("lowercase currency", _set(*HOST1, "currency", value="eur"),
     "customers[0].hosts[1].currency", "not a currency code"),
    ("rack unit zero", _set(*HOST1, "unit", value=0), "customers[0].hosts[1].unit",
     "whole number >= 1"),
    ("host id across customers", _set("customers", 1, "hosts", 0, "id", value="web-01"),
     "customers[1].hosts[0].id", "duplicate host id 'web-01' (first at customers[0].hosts[0].id)"),
    ("hosts not a list", _set("customers", 1, "hosts", value={"id": "gx-01"}),
     "customers[1].hosts", "expected a list"),
    ("spare at unknown site", _set("spares", 0, "site", value="sfo9"), "spares[0].site",
     "unknown site"),
    ("spare of unknown kind", _set("spares", 0, "kind", value="toner"), "spares[0].kind",
     "unknown value 'toner'"),
    ("negative spares", _set("spares", 0, "count", value=-1), "spares[0].count",
     "whole number >= 0"),
    ("duplicate spare", _append("spares", {"site": "iad1", "part": "ST8000", "kind": "disk",
                                           "count": 1}), "spares[1].part", "duplicate spare"),
    ("spare not a mapping", _set("spares", 0, value="ST8000"), "spares[0]",
     "expected a mapping"),
    ("dangling bmc", _set(*HOST1, "bmc", value="ilo-9"), "customers[0].hosts[1].bmc",
     "unknown host 'ilo-9'"),
    ("bmc is the host itself", _set(*HOST1, "bmc", value="web-02"),
     "customers[0].hosts[1].bmc", "names itself as its BMC"),
    ("bmc not an id", _set(*HOST1, "bmc", value="ilo 9"), "customers[0].hosts[1].bmc",
     "not a valid id"),
]


@pytest.mark.parametrize(("edit", "path", "reason"), [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])
def test_invalid_fleet_names_file_key_and_reason(edit: Edit, path: str, reason: str) -> None:
    data = copy.deepcopy(valid())
    edit(data)
    with pytest.raises(FleetError) as err:
        parse_fleet(data, SRC)
    message = str(err.value)
    assert message.startswith(f"{SRC}: {path}: "), message
    assert reason in message
    assert "; " in message.removeprefix(f"{SRC}: {path}: "), "says what to do"


@pytest.mark.parametrize(("data", "reason"), [
    (None, "the file is empty"),
    ([1, 2], "expected a mapping, got a list"),
])
def test_invalid_top_level(data: Any, reason: str) -> None:
    with pytest.raises(FleetError, match=rf"^{SRC}: top level: {reason}"):
        parse_fleet(data, SRC)


@pytest.mark.parametrize(("shift", "start", "end"), [
    ("07:00-19:00", time(7), time(19)),
    ("19:00-07:00", time(19), time(7)),  # across midnight
    ("22:30-06:15", time(22, 30), time(6, 15)),
    ("24h", time(0), END_OF_DAY),
    ("00:00-24:00", time(0), END_OF_DAY),
    (None, time(0), END_OF_DAY),  # no shift: all day
])
def test_shifts(shift: str | None, start: time, end: time) -> None:
    data = valid()
    data["technicians"][0]["shift"] = shift
    tech = parse_fleet(data, SRC).technicians[0]
    assert (tech.shift_start, tech.shift_end) == (start, end)


def test_valid_fleet_values_and_defaults() -> None:
    data = valid()
    data["customers"][0]["contract"]["sla_minutes"] = 0.1  # tests run minute-long SLAs faster
    data["customers"][0]["hosts"][1].update(room=3, rack=12)  # YAML reads bare numbers as int
    fleet = parse_fleet(data, SRC)
    assert fleet.sites[1] == Site("lon1", "London 1", "UTC", None)
    assert fleet.technicians[0].role is StaffRole.TECHNICIAN
    assert fleet.technicians[0].skills == ("disk", "memory")
    assert fleet.technicians[1].skills == ()
    # No credit period in the contract: None, the failure class's period applies.
    assert fleet.customers[0].contract == Contract(0.1, Decimal(5), None, Decimal(100))
    assert fleet.customers[1].contract == Contract()
    assert fleet.customers[1].account_manager is None
    assert fleet.hosts[0] == Host("web-01", "acme", "iad1", Decimal("450.0"))
    assert fleet.hosts[1] == Host("web-02", "acme", "lon1", Decimal(450), "EUR", "3", "12", 7)
    assert [h.id for h in fleet.hosts] == ["web-01", "web-02", "gx-01"]
    assert parse_fleet({}, SRC) == Fleet()


def test_example_file_is_valid() -> None:
    fleet = load_fleet_file(EXAMPLE)
    assert len(fleet.sites) == 2
    assert all(s.manager for s in fleet.sites)
    assert {t.role for t in fleet.technicians} == set(StaffRole)
    assert len(fleet.customers) == 2
    assert len(fleet.spares) >= 2


@pytest.mark.parametrize(("text", "reason"), [
    ("sites: [\n  {id: a, name: b\n", "line 3, column 1: not valid YAML"),
    ("sites:\n  - id: a\n    name: b\n    id: c\n", "line 4, column 5: not valid YAML"),
    ("sites:\n  - id: a\n    name: b\n    tz: UTC\n", "sites[0].tz: unknown key"),
])
def test_yaml_file_errors_name_the_file(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetError) as err:
        load_fleet_file(path)
    assert str(err.value).startswith(f"{path}: {reason}"), str(err.value)


def test_duplicate_yaml_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("sites:\n  - id: a\n    name: b\n    id: c\n")
    with pytest.raises(FleetError, match="key 'id' is given twice"):
        load_fleet_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match=r"nope\.yaml: cannot read the fleet file"):
        load_fleet_file(tmp_path / "nope.yaml")


TABLES = ("sites", "technicians", "customers", "hosts", "spares")


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    out = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        out[table] = row[0]
    return out


def test_load_twice_updates_and_never_duplicates(pg_url: str) -> None:
    fleet = load_fleet_file(EXAMPLE)
    expected = {"sites": len(fleet.sites), "technicians": len(fleet.technicians),
                "customers": len(fleet.customers), "hosts": len(fleet.hosts),
                "spares": len(fleet.spares)}
    people = {"account_people": 2, "contacts": 6, "account_team": 1,
              "maintenance_windows": 1}  # the example's
    with psycopg.connect(pg_url) as conn:
        assert apply_fleet(conn, fleet) == {**expected, **people}
        assert _counts(conn) == expected
        assert apply_fleet(conn, fleet) == {**expected, **people}
        assert _counts(conn) == expected

        acme = fleet.customers[0]
        moved = dataclasses.replace(acme.hosts[0], monthly_fee=Decimal("999.99"), rack="r99")
        edited = dataclasses.replace(fleet, customers=(
            dataclasses.replace(acme, hosts=(moved, *acme.hosts[1:]),
                                contract=Contract(sla_minutes=0.1)),
            *fleet.customers[1:]))
        apply_fleet(conn, edited)
        assert _counts(conn) == expected
        assert conn.execute("SELECT monthly_fee, rack FROM hosts WHERE id = %s",
                            (moved.id,)).fetchone() == (Decimal("999.99"), "r99")
        assert conn.execute("SELECT sla_minutes FROM customers WHERE id = %s",
                            (acme.id,)).fetchone() == (0.1,)


def test_shifts_and_skills_as_stored(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_fleet(conn, load_fleet_file(EXAMPLE))
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, shift_start::text, shift_end::text, skills, role, active"
            " FROM technicians")}
        managers: dict[str, str] = dict(conn.execute("SELECT id, manager_id FROM sites").fetchall())
    assert rows["t-ben"] == ("19:00:00", "07:00:00", ["disk", "raid", "cpu", "memory", "host"],
                             "technician", True)
    assert rows["t-maria"][:2] == ("00:00:00", "24:00:00")  # 24h
    assert rows["t-ines"][:3] == ("00:00:00", "24:00:00", [])  # no shift, no skills
    assert managers == {"iad1": "t-maria", "lon1": "t-oliver"}


def test_failed_load_writes_nothing(pg_url: str) -> None:
    # Built past the parser, so the database is what refuses the dangling site.
    stray = Host("h1", "acme", "nowhere", Decimal(1))
    acme = dataclasses.replace(load_fleet_file(EXAMPLE).customers[0], hosts=(stray,))
    fleet = Fleet(sites=(Site("iad1", "Ashburn"),), customers=(acme,))
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            apply_fleet(conn, fleet)
        conn.rollback()
        assert _counts(conn) == dict.fromkeys(TABLES, 0)


def test_pdu_switch_and_bmc_as_stored(pg_url: str) -> None:
    data = valid()
    # a blade names its enclosure manager's host, listed after it (the key is deferred)
    data["customers"][0]["hosts"][0].update(pdu="iad1-r12-pdu-a", switch="sw-12", bmc="gx-01")
    fleet = parse_fleet(data, SRC)
    assert fleet.hosts[0].pdu == "iad1-r12-pdu-a"
    assert (fleet.hosts[0].switch, fleet.hosts[0].bmc) == ("sw-12", "gx-01")
    with psycopg.connect(pg_url) as conn:
        apply_fleet(conn, parse_fleet(data, SRC))
        rows = conn.execute("SELECT id, pdu, switch, bmc_host FROM hosts ORDER BY id").fetchall()
    assert rows == [("gx-01", None, None, None), ("web-01", "iad1-r12-pdu-a", "sw-12", "gx-01"),
                    ("web-02", None, None, None)]
