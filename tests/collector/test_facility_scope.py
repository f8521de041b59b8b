"""Facility scope (rack, PDU, switch) and the BMC named in the fleet file, on a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from agent import messages
from collector import facility, store
from collector.decode import decode
from collector.facility import FacilityParams, Scope, Silent
from collector.model import Message, Received
from dispatcher.domain import credit
from dispatcher.domain import facility as fac
from dispatcher.domain.notify import AccountTeam

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[object, ...]]
P = FacilityParams()
# (host, rack, pdu, switch): two racks of 20; PDU pa feeds 6 hosts of each rack (12 in all);
# switch sw-agg serves 5 hosts of each of four racks (20 in all, none of them on pa)
FLEET = ([(f"a-{i:02d}", "ra", "pa" if i < 6 else "pb", "sw-agg" if 10 <= i < 15 else "sw-a")
          for i in range(20)]
         + [(f"b-{i:02d}", "rb", "pa" if i < 6 else "pc", "sw-agg" if 10 <= i < 15 else "sw-b")
            for i in range(20)]
         + [(f"{r}-{i:02d}", r, f"p{r}", "sw-agg" if i < 5 else f"sw-{r}")
            for r in ("rc", "rd") for i in range(10)])
BLADES = ["blade-1", "blade-2"]  # behind enclosure managers enc-1 and enc-2


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _decoded(host: str, kind: str, body: dict[str, object], seq: int, s: float) -> Message:
    got = decode(Received(f"hg/v1/s1/{host}/{kind}", json.dumps(body).encode(), seq, 1, at(s)))
    assert isinstance(got, Message)
    return got


def tel(host: str, seq: int, s: float, power_on: float | None = None) -> Message:
    readings = [] if power_on is None else [messages.Reading("bmc:power", "bmc.power_on",
                                                             power_on)]
    return _decoded(host, "telemetry", messages.telemetry(
        host, "s1", seq, at(s), interval_s=30.0, readings=readings, components=[]), seq, s)


def born(host: str, chassis_serial: str) -> Message:
    return _decoded(host, "birth", messages.birth(
        host, "s1", 1, T0, agent_version="1", boot_id="b", interval_s=30.0,
        chassis={"serial": chassis_serial}, components=[]), 1, 0)


@pytest.fixture
def conn(pg_url: str) -> Conn:
    with psycopg.connect(pg_url) as c:
        c.execute("INSERT INTO sites (id, name) VALUES ('s1', 'Site 1')")
        c.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1')")
        c.cursor().executemany(
            "INSERT INTO hosts (id, customer_id, site_id, room, rack, pdu, switch, bmc_host)"
            " VALUES (%s, 'c1', 's1', 'A', %s, %s, %s, %s)",
            [(*h, None) for h in FLEET]
            + [("blade-1", "re", None, None, "enc-1"), ("blade-2", "re", None, None, "enc-2"),
               ("enc-1", "re", None, None, None), ("enc-2", "re", None, None, None),
               ("other-ilo", "re", None, None, None)])
    return psycopg.connect(pg_url, autocommit=True)


def go_dark(conn: Conn, dark: list[str]) -> list[tuple[object, ...]]:
    """Every host speaks; `dark` ones within 27 s, the rest later; sweep until all are down."""
    directory = store.Directory()
    with conn:
        directory.reload(conn)  # type: ignore[arg-type]
        store.write_batch(conn, directory, [tel(h, 1, i * 0.7) for i, h in enumerate(dark)],
                          [])  # type: ignore[arg-type]
        store.write_batch(conn, directory, [tel(h[0], 1, 200) for h in FLEET if h[0] not in dark],
                          [])  # type: ignore[arg-type]
        for s in (91, 130, 180):  # the first confirmed down, then all of them
            assert store.sweep_host_down(conn, directory, 3, at(s)) == []  # type: ignore[arg-type]
        return conn.execute(
            "SELECT f.scope, f.scope_id, f.cause, f.rack, f.rack_hosts, count(fh.host_id)"
            " FROM facility_incidents f JOIN facility_incident_hosts fh ON fh.facility_id = f.id"
            " GROUP BY f.id ORDER BY f.id").fetchall()


def hosts_where(rack: str | None = None, pdu: str | None = None,
                switch: str | None = None) -> list[str]:
    return [h for h, r, p, s in FLEET
            if (rack is None or r == rack) and (pdu is None or p == pdu)
            and (switch is None or s == switch)]


def test_twelve_hosts_of_one_pdu_across_two_racks_are_one_power_incident(conn: Conn) -> None:
    # 6 of each rack would each qualify as a rack event (5 hosts), but the PDU explains all 12
    got = go_dark(conn, hosts_where(pdu="pa"))
    assert got == [("pdu", "pa", "power", "ra", 12, 12)]


def test_twenty_hosts_behind_one_switch_are_one_network_incident(conn: Conn) -> None:
    got = go_dark(conn, hosts_where(switch="sw-agg"))
    assert got == [("switch", "sw-agg", "network", "ra", 20, 20)]


def test_a_whole_rack_is_the_rack_not_one_of_its_pdus(conn: Conn) -> None:
    # rack ra: PDU pa (6 of them) and pb (14) both dark, so only the rack covers all 20
    got = go_dark(conn, hosts_where(rack="ra"))
    assert got == [("rack", "ra", "power", "ra", 20, 20)]


def test_the_bmc_named_in_the_fleet_file_confirms_host_down(conn: Conn) -> None:
    directory = store.Directory()
    with conn:
        directory.reload(conn)  # type: ignore[arg-type]
        # blade-1's chassis serial matches other-ilo (which says off) but the fleet file
        # names enc-1 (which says on): the named BMC wins, so blade-1 is no host_down
        store.write_batch(conn, directory, [born("blade-1", "CZ-X"), born("other-ilo", "CZ-X")],
                          [])  # type: ignore[arg-type]
        store.write_batch(conn, directory, [tel(b, 2, 0) for b in BLADES],
                          [])  # type: ignore[arg-type]
        store.write_batch(conn, directory, [
            tel("enc-1", 2, 90, power_on=1.0), tel("enc-2", 2, 90, power_on=0.0),
            tel("other-ilo", 2, 90, power_on=0.0)], [])  # type: ignore[arg-type]
        store.sweep_host_down(conn, directory, 3, at(95))  # type: ignore[arg-type]
        got = conn.execute("SELECT host_id, evidence->>'bmc_power_on' FROM incidents").fetchall()
    assert got == [("blade-2", "false")]


def silent(host: str, s: float, rack: str, pdu: str | None = None, switch: str | None = None,
           bmc_on: bool | None = None) -> Silent:
    return Silent(host, "s1", rack, at(s), bmc_on, pdu=pdu, switch=switch)


# Eight hosts in rack r1 of 40 on PDUs pa/pb (20 each) and switch sw (40), a rack of 40.
TOTALS: dict[Scope, int] = {"rack": 40, "pdu": 20, "switch": 40}


def group(n: int, pdus: tuple[str, ...] = ("pa",), bmc_on: bool | None = None) -> list[Silent]:
    return [silent(f"h{i:02d}", i, "r1", pdus[i % len(pdus)], "sw", bmc_on) for i in range(n)]


@pytest.mark.parametrize(("name", "hosts", "totals", "expected"), [
    ("one PDU's hosts: the PDU, narrower than the rack", group(20), TOTALS,
     ("pdu", "pa", "power", 20)),
    ("both PDUs dark: the rack covers more", group(40, ("pa", "pb")),
     {"rack": 40, "pdu": 20, "switch": 80}, ("rack", "r1", "power", 40)),
    ("both PDUs dark, BMCs on: still the rack, its cause network",
     group(40, ("pa", "pb"), bmc_on=True), {"rack": 40, "pdu": 20, "switch": 80},
     ("rack", "r1", "network", 40)),
    ("PDU and switch feed the same hosts, BMCs on: the switch", group(20, bmc_on=True),
     {"rack": 40, "pdu": 20, "switch": 20}, ("switch", "sw", "network", 20)),
    ("PDU and switch feed the same hosts, BMCs off: the PDU", group(20, bmc_on=False),
     {"rack": 40, "pdu": 20, "switch": 20}, ("pdu", "pa", "power", 20)),
    ("a rack with one switch, no BMC word: the rack, power", group(40, ("pa", "pb")),
     TOTALS, ("rack", "r1", "power", 40)),
    ("a rack with one switch, BMCs on: the switch", group(40, ("pa", "pb"), bmc_on=True),
     TOTALS, ("switch", "sw", "network", 40)),
    ("three of a big PDU, rack and switch: no facility", group(3), TOTALS, None),
])
def test_choose(name: str, hosts: list[Silent], totals: dict[Scope, int],
                expected: tuple[str, str, str, int] | None) -> None:
    c = facility.choose(hosts[0], hosts, totals, P)
    assert (c and (c.scope, c.scope_id, c.cause, len(c.hosts))) == expected, name


def test_choose_without_pdu_or_switch_is_the_rack_as_before() -> None:
    hosts = [silent(f"h{i}", i, "r1") for i in range(5)]
    far = silent("late", 200, "r1")  # outside the window
    c = facility.choose(hosts[0], [*hosts, far], {"rack": 40}, P)
    assert c is not None
    assert (c.scope, c.scope_id, c.rack, c.scope_hosts) == ("rack", "r1", "r1", 40)
    assert [h.host for h in c.hosts] == [f"h{i}" for i in range(5)]


def test_rack_of_a_pdu_incident_is_the_rack_of_most_hosts() -> None:
    hosts = [silent(f"h{i}", i, "r2" if i < 4 else "r1", "pa") for i in range(7)]
    c = facility.choose(hosts[0], hosts, {"rack": 40, "pdu": 7}, P)
    assert c is not None
    assert (c.scope, c.rack) == ("pdu", "r2")


@pytest.mark.parametrize(("scope", "scope_id", "cause", "words"), [
    ("pdu", "iad1-r12-pdu-a", "power", "PDU iad1-r12-pdu-a in Ashburn 1 lost power at"),
    ("switch", "sw-12", "network", "Switch sw-12 in Ashburn 1 lost network at"),
    ("rack", "r12", "network", "Rack r12 in Ashburn 1 lost its network at"),
])
def test_dispatcher_messages_name_the_scope(scope: str, scope_id: str, cause: str,
                                            words: str) -> None:
    f = fac.Facility(7, "iad1", "Ashburn 1", "r12", cause, T0, T0 + timedelta(hours=1), None,
                     credit.CreditPolicy(Decimal(5), 30.0, Decimal(100)), scope, scope_id)
    msgs = fac.opened(f, "t-maria", {"acme": (AccountTeam("am-lee", ()), 12)})
    assert [m.recipient for m in msgs] == ["t-maria", "am-lee"]
    assert all(f"{words} 2026-11-23 09:00:00Z" in m.subject + m.body for m in msgs)
