"""Facility correlation and the host-down confirmation through the sweep, on a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from agent import messages
from collector import facility, store
from collector.decode import decode
from collector.facility import FacilityParams, Silent
from collector.model import Message, Received

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[object, ...]]
R1 = [f"r1-{i:02d}" for i in range(40)]  # one rack of 40, half of each customer
R2 = [f"r2-{i:02d}" for i in range(10)]


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def tel(host: str, seq: int, s: float, power_on: float | None = None) -> Message:
    readings = [] if power_on is None else [messages.Reading("bmc:power", "bmc.power_on",
                                                             power_on)]
    body = messages.telemetry(host, "s1", seq, at(s), interval_s=30.0, readings=readings,
                              components=[])
    got = decode(Received(f"hg/v1/s1/{host}/telemetry", json.dumps(body).encode(), seq, 1, at(s)))
    assert isinstance(got, Message)
    return got


def born(host: str, chassis_serial: str) -> Message:
    body = messages.birth(host, "s1", 1, T0, agent_version="1", boot_id="b", interval_s=30.0,
                          chassis={"serial": chassis_serial}, components=[])
    got = decode(Received(f"hg/v1/s1/{host}/birth", json.dumps(body).encode(), 1, 1, T0))
    assert isinstance(got, Message)
    return got


@pytest.fixture
def conn(pg_url: str) -> Conn:
    with psycopg.connect(pg_url) as c:
        c.execute("INSERT INTO sites (id, name) VALUES ('s1', 'Site 1')")
        c.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1'), ('c2', 'C2')")
        c.cursor().executemany(
            "INSERT INTO hosts (id, customer_id, site_id, room, rack)"
            " VALUES (%s, %s, 's1', 'A', %s)",
            [(h, "c1" if i % 2 else "c2", "r1") for i, h in enumerate(R1)]
            + [(h, "c1", "r2") for h in R2]
            + [(h, "c1", None) for h in ("srv-a", "srv-a-ilo", "srv-b", "srv-b-ilo")])
    return psycopg.connect(pg_url, autocommit=True)


def write(conn: Conn, directory: store.Directory, msgs: list[Message]) -> None:
    store.write_batch(conn, directory, msgs, [])  # type: ignore[arg-type]


def sweep(conn: Conn, directory: store.Directory, s: float) -> list[int]:
    return store.sweep_host_down(conn, directory, 3, at(s))  # type: ignore[arg-type]


def counts(conn: Conn) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM facility_incidents),"
        " (SELECT count(*) FROM facility_incident_hosts),"
        " (SELECT count(*) FROM incidents WHERE failure = 'host_down')").fetchone()
    assert row is not None
    return row


def test_a_rack_going_dark_is_one_facility_incident_not_forty(conn: Conn) -> None:
    directory = store.Directory()
    with conn:
        directory.reload(conn)  # type: ignore[arg-type]
        # rack r1 last spoke between 0 and 27 s (one 30 s interval), then lost power
        write(conn, directory, [tel(h, 1, i * 0.7) for i, h in enumerate(R1)])
        write(conn, directory, [tel(h, 1, 100) for h in R2])
        # at 91 s only the first two are confirmed down, but all 40 are silent together
        assert sweep(conn, directory, 91) == []
        assert counts(conn) == (1, 40, 0)
        for s in (130, 150, 180):  # every host confirmed down since: still one, no host_down
            sweep(conn, directory, s)
        assert counts(conn) == (1, 40, 0)
        # three unrelated hosts of rack r2 (of 10) go silent: ordinary incidents
        write(conn, directory, [tel(h, 2, 200) for h in R2[3:]])
        write(conn, directory, [tel(h, 3, 300) for h in R2[3:]])
        opened = sweep(conn, directory, 305)
        assert len(opened) == 3
        assert counts(conn) == (1, 40, 3)
        row = conn.execute("SELECT site_id, room, rack, cause, state, detected_at, deadline,"
                           " rack_hosts, credit_percent, credit_period_minutes"
                           " FROM facility_incidents").fetchone()
    assert row == ("s1", "A", "r1", "power", "open", at(91), at(91 + 3600), 40, 5, 30)


def test_hosts_that_come_back_resolve_it_and_the_rest_are_host_down(conn: Conn) -> None:
    directory = store.Directory()
    with conn:
        directory.reload(conn)  # type: ignore[arg-type]
        write(conn, directory, [tel(h, 1, i * 0.7) for i, h in enumerate(R1)])
        sweep(conn, directory, 91)
        write(conn, directory, [tel(h, 2, 600) for h in R1[:25]])  # power back, 15 stay dark
        sweep(conn, directory, 601)
        state = conn.execute("SELECT state, resolved_at FROM facility_incidents").fetchone()
        back = conn.execute("SELECT count(back_at) FROM facility_incident_hosts").fetchone()
        sweep(conn, directory, 602)
        down = conn.execute("SELECT host_id, detected_at FROM incidents ORDER BY host_id"
                            ).fetchall()
    assert state == ("resolved", at(600))
    assert back == (25,)
    # their own clocks start when the facility's ended, not back when the rack went dark
    assert down == [(h, at(600)) for h in R1[25:]]


def test_the_bmc_word_confirms_host_down(conn: Conn) -> None:
    directory = store.Directory()
    with conn:
        directory.reload(conn)  # type: ignore[arg-type]
        write(conn, directory, [born("srv-a", "CZ-A"), born("srv-a-ilo", "CZ-A"),
                                born("srv-b", "CZ-B"), born("srv-b-ilo", "CZ-B")])
        write(conn, directory, [tel("srv-a", 2, 0), tel("srv-b", 2, 0)])
        # both servers fall silent; srv-a's BMC says it is still on (an OS hang, a cable),
        # srv-b's says power is off: only srv-b is a hardware host_down
        write(conn, directory, [tel("srv-a-ilo", 2, 90, power_on=1.0),
                                tel("srv-b-ilo", 2, 90, power_on=0.0)])
        sweep(conn, directory, 95)
        got = conn.execute("SELECT host_id, evidence->>'bmc_power_on' FROM incidents").fetchall()
        power = conn.execute("SELECT host_id, power_on, reporter FROM bmc_power ORDER BY 1"
                             ).fetchall()
    assert power == [("srv-a", True, "srv-a-ilo"), ("srv-b", False, "srv-b-ilo")]
    assert got == [("srv-b", "false")]


P = FacilityParams()


@pytest.mark.parametrize(("size", "rack", "expected"), [
    (1, 1, False),  # one host is a host, even alone in its rack
    (2, 4, True),  # half of a small rack
    (3, 40, False),
    (5, 40, True),
    (4, 6, True),
])
def test_is_facility(size: int, rack: int, expected: bool) -> None:
    assert facility.is_facility(size, rack, P) is expected


def test_cluster_and_cause() -> None:
    hosts = [Silent(f"h{i}", "s1", "r1", at(i * 20), bmc_on=True if i < 2 else None)
             for i in range(6)]
    other_rack = Silent("x", "s1", "r2", at(0))
    got = facility.cluster(hosts[0], [*hosts, other_rack], 60)
    assert [s.host for s in got] == ["h0", "h1", "h2", "h3"]
    assert facility.cause(got) == "network"
    assert facility.cause(hosts[2:]) == "power"


@pytest.mark.parametrize(("table", "column", "enum"), [
    ("predictions", "state", "PredictionState"),
    ("inventory_changes", "change", "InventoryChange"),
    ("facility_incidents", "state", "FacilityState"),
    ("facility_incidents", "scope", "FacilityScope"),
])
def test_sql_checks_mirror_the_enums(conn: Conn, table: str, column: str, enum: str) -> None:
    from schemas import states

    (check,) = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = %s AND c.contype = 'c'"
        " AND pg_get_constraintdef(c.oid) LIKE %s", (table, f"%({column} = %")).fetchone() or (
        "",)
    values = {v.value for v in getattr(states, enum)}
    assert values
    assert all(f"'{v}'::text" in str(check) for v in values)
    assert str(check).count("::text") == len(values)
