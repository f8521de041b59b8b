"""Property tests: nothing a device or a trap sender puts on the wire makes the proxy raise.

Traps come from anyone who can reach the trap port, and a walk is whatever a BMC or PDU
answered, so both are fed arbitrary pysnmp values (and plain Python ones) through the
pure functions that read them: ``to_scalar``, ``trap_from`` with ``Trap``'s properties and
``trapped``, and each profile's mapping through ``TargetReporter``. Every message the
proxy would publish from a hostile walk must keep to schemas/mqtt. Together the trap and
walk properties run 20,020 cases (about 35 s on a 2-core machine); a last test throws
real datagrams at a TrapReceiver.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import json
import logging
import random
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import rfc1902
from pysnmp.proto.api import v1, v2c

from agent.config import ProxyTarget, load_config
from agent.core import Outgoing
from agent.profiles import MAX_ROWS, PROFILES, Skipped
from agent.proxy import Proxy, TargetReporter, trapped
from agent.snmp import (
    SNMP_TRAP_ADDRESS,
    SNMP_TRAP_OID,
    LogLimit,
    Scalar,
    Trap,
    TrapReceiver,
    to_scalar,
    trap_from,
)
from schemas.mqtt_contract import errors
from tests.agent.test_snmp_profile import HEALTHY, PDU, free_udp_port, read_snmprec

pytestmark = pytest.mark.fuzz

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
# No example database, so every run draws fresh cases; no deadline, since a busy 2-core CI
# machine can stall any single case.
FAST = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HEX = re.compile(r"[0-9a-f]*")
OID_TEXT = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10}){1,127}")

# -- values as pysnmp decodes them from the wire, and values no decoder would build ---------


class Huge(int):
    """An int too large for str() (CPython refuses over 4,300 digits) that Hypothesis can
    still print when it reports a failing case."""

    def __repr__(self) -> str:
        return f"Huge(<{self.bit_length()} bits>)"


class HugeArcOid(rfc1902.ObjectIdentifier):
    """An OID with a sub-identifier str() refuses, printable in a report."""

    def __repr__(self) -> str:
        return "HugeArcOid(1.3.<a huge arc>)"


class HugeArcName(rfc1902.ObjectName):
    """A binding's name with a sub-identifier str() refuses, printable in a report."""

    def __repr__(self) -> str:
        return "HugeArcName(1.3.<a huge arc>)"


class Unprintable:
    """A plain object whose str() raises."""

    def __str__(self) -> str:
        raise ValueError("no text for this")

    def __repr__(self) -> str:
        return "Unprintable()"


BIG = Huge(10**5000)

u32 = st.integers(0, 2**32 - 1)
oid_parts = st.lists(u32, min_size=2, max_size=8)
octets = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\xff\xfe", b"\x00", b"ab\x00cd", b"\xc3\x28", b"\xed\xa0\x80",
                     b"9" * 400, b"-1", b"  3  ", b"1_0", b"\xd9\xa3"]),  # \xd9\xa3: Arabic 3
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 2000).map(lambda n: b"A" * n),
)
pysnmp_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer32),
    st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer),
    u32.map(rfc1902.Unsigned32), u32.map(rfc1902.Gauge32), u32.map(rfc1902.Counter32),
    u32.map(rfc1902.TimeTicks), st.integers(0, 2**64 - 1).map(rfc1902.Counter64),
    octets.map(rfc1902.OctetString), octets.map(rfc1902.Opaque), octets.map(rfc1902.Bits),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    oid_parts.map(rfc1902.ObjectIdentifier),
    st.builds(HugeArcOid, st.just((1, 3, BIG))),
    st.sampled_from([v2c.Null(""), v2c.NoSuchObject(""), v2c.NoSuchInstance(""),
                     v2c.EndOfMibView("")]),
    # templates without a value, which no decoder returns but pysnmp lets anyone build
    st.sampled_from([rfc1902.Integer32, rfc1902.OctetString, rfc1902.ObjectIdentifier,
                     rfc1902.IpAddress, v2c.Null, rfc1902.Counter64]).map(lambda cls: cls()),
)
plain_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just(BIG), st.floats(),
    st.text(max_size=40), st.binary(max_size=40), st.lists(st.integers(), max_size=3),
    st.builds(Unprintable),
)
any_value = st.one_of(pysnmp_values, plain_values)


@settings(FAST, max_examples=8_500)
@given(any_value)
def test_to_scalar_takes_any_value_and_gives_an_int_or_printable_text(value: Any) -> None:
    got = to_scalar(value)
    assert isinstance(got, int | str)
    if isinstance(value, rfc1902.OctetString) and value.isValue:
        assert HEX.fullmatch(got) or got.isprintable()
        if value.__class__.__name__ == "IpAddress" and len(bytes(value)) == 4:
            assert got == str(ipaddress.IPv4Address(bytes(value)))


def test_values_that_made_to_scalar_raise_now_read_as_values() -> None:
    # no @example: Hypothesis prints explicit examples, and these cannot be printed
    assert to_scalar(5) == 5  # was: AttributeError ('int' object has no prettyPrint)
    assert to_scalar(HugeArcOid((1, 3, BIG))) == "<HugeArcOid>"  # was: ValueError
    assert to_scalar(rfc1902.Integer32()) == "<Integer32>"  # was: PyAsn1Error (no value)
    assert to_scalar(Unprintable()) == "<Unprintable>"  # was: AttributeError
    trap = trap_from("127.0.0.1", [(rfc1902.ObjectName(SNMP_TRAP_ADDRESS), BIG),
                                   (HugeArcName((1, 3, BIG)), 1)])
    assert trap.address is None
    assert trapped(trap, {"c7000-a": "127.0.0.1"}) == {"c7000-a"}


def test_to_scalar_keeps_what_it_gave_valid_values() -> None:
    assert to_scalar(rfc1902.Integer32(-5)) == -5
    assert to_scalar(rfc1902.Counter64(2**64 - 1)) == 2**64 - 1
    assert to_scalar(rfc1902.OctetString(b"5AGUD0AHL3W1L7")) == "5AGUD0AHL3W1L7"
    assert to_scalar(rfc1902.OctetString(b"\x00\x01")) == "0001"
    assert to_scalar(rfc1902.OctetString(b"")) == ""
    assert to_scalar(rfc1902.ObjectIdentifier("1.3.6.1.4.1.232")) == "1.3.6.1.4.1.232"
    assert to_scalar(v2c.Null("")) == ""
    # snmpTrapAddress as a v2c trap carries it: was hex ("7f000001"), matching no target
    assert to_scalar(rfc1902.IpAddress("127.0.0.1")) == "127.0.0.1"


# -- traps -----------------------------------------------------------------------------------

oid_names = st.one_of(
    oid_parts.map(rfc1902.ObjectName),
    st.sampled_from([SNMP_TRAP_OID, SNMP_TRAP_ADDRESS]).map(rfc1902.ObjectName),
    st.sampled_from([SNMP_TRAP_OID, SNMP_TRAP_ADDRESS, "", "not an oid", "1.3.\x00"]),
    st.builds(HugeArcName, st.just((1, 3, BIG))),
    st.builds(rfc1902.ObjectName),  # a template
    plain_values,
)
var_binds = st.lists(st.tuples(oid_names, any_value), max_size=6)
# thousands of bindings, as one 64 KB datagram can hold
many_binds = st.integers(1000, 3000).map(lambda n: [
    (rfc1902.ObjectName((1, 3, 6, 1, 4, 1, i)), rfc1902.OctetString(b"\xff" * (i % 7)))
    for i in range(n)])
sources = st.one_of(st.just("127.0.0.1"), st.ip_addresses(v=4).map(str), st.text(max_size=20))


def check_trap(trap: Trap) -> None:
    """A Trap's properties never raise and are either None or well formed."""
    assert trap.trap_oid is None or OID_TEXT.fullmatch(trap.trap_oid)
    address = trap.address
    assert address is None or str(ipaddress.IPv4Address(address)) == address
    for value in trap.var_binds.values():
        assert isinstance(value, int | str)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Proxy:
    """A proxy that is never started: its on_trap sees no targets and must only log."""
    cfg = tmp_path_factory.mktemp("proxy") / "agent.yaml"
    cfg.write_text("site: iad1\nhost: mgmt-01\nproxy:\n  targets:\n"
                   "    - {host: c7000-a, address: 127.0.0.1, community: public}\n")
    return Proxy(load_config(cfg, env={}), lambda: NOW)


@settings(FAST, max_examples=4_500)
@given(source=sources, binds=var_binds, ip=st.ip_addresses(v=4))
@example(source="10.0.0.9", ip=ipaddress.IPv4Address("10.0.0.9"),
         binds=[(rfc1902.ObjectName(SNMP_TRAP_OID), rfc1902.OctetString(b"\xff\x00" * 100)),
                (rfc1902.ObjectName(SNMP_TRAP_ADDRESS), rfc1902.OctetString(b"not an ip"))])
def test_any_var_binds_make_a_trap_that_never_raises(
    proxy: Proxy, source: str, binds: list[tuple[Any, Any]], ip: ipaddress.IPv4Address
) -> None:
    trap = trap_from(source, binds)
    check_trap(trap)
    ips = {"c7000-a": str(ip), "pdu-7": "pdu7.mgmt"}  # an unresolved name stays a name
    hosts = trapped(trap, ips)
    assert "pdu-7" not in hosts or trap.source == "pdu7.mgmt"
    assert ("c7000-a" in hosts) == (str(ip) in (trap.source, trap.address))
    proxy.on_trap(trap)


@settings(FAST, max_examples=500)
@given(binds=var_binds, ip=st.ip_addresses(v=4))
def test_a_forwarded_trap_names_its_device_by_snmp_trap_address(
    binds: list[tuple[Any, Any]], ip: ipaddress.IPv4Address
) -> None:
    about = [(rfc1902.ObjectName(SNMP_TRAP_ADDRESS), rfc1902.IpAddress(ip.packed))]
    trap = trap_from("192.0.2.1", [*binds, *about])  # the last binding of a name wins
    assert trap.address == str(ip)
    assert trapped(trap, {"c7000-a": str(ip)}) == {"c7000-a"}


@settings(FAST, max_examples=20)
@given(binds=many_binds)
def test_thousands_of_var_binds_make_one_trap(binds: list[tuple[Any, Any]]) -> None:
    trap = trap_from("127.0.0.1", binds)
    check_trap(trap)
    assert len(trap.var_binds) == len(binds)


def test_the_log_limit_holds_back_a_flood_and_says_how_much(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = itertools.count(0.0, 1.0)  # one second per line
    limit = LogLimit(burst=3, window_s=60.0, monotonic=lambda: next(clock))
    assert [limit.allow() for _ in range(59)] == [True] * 3 + [False] * 56
    with caplog.at_level(logging.WARNING, logger="agent.snmp"):
        assert limit.allow()  # a new window: the count of the last one is said first
    assert "held back 56 SNMP log lines in the last 60 s" in caplog.text


# -- walks -----------------------------------------------------------------------------------

# The tables the profiles read, each with the columns they read and one they do not.
TABLES = {
    "hp-onboard-administrator": {
        "1.3.6.1.4.1.232.22.2.3.1.1.1": (3, 7, 9), "1.3.6.1.4.1.232.22.2.3.1.2.1": (5, 6, 7, 8, 9),
        "1.3.6.1.4.1.232.22.2.3.1.3.1": (6, 8, 11, 12), "1.3.6.1.4.1.232.22.2.3.3.1.1": (5, 9, 10),
        "1.3.6.1.4.1.232.22.2.5.1.1.1": (5, 6, 10, 14, 15, 16, 17, 18),
    },
    "apc-rpdu2": {
        "1.3.6.1.4.1.318.1.1.26.2.1": (8, 9, 10), "1.3.6.1.4.1.318.1.1.26.6.1.1": (7, 8),
        "1.3.6.1.4.1.318.1.1.26.6.3.1": (4, 5, 6, 7),
    },
}
#: Row indexes: a device's own, new rows, and what no component id or slot can hold.
INDEXES = ("1", "2", "3", "10", "1.1", "4294967295", "0.0.0.1", "7." * 20 + "7",
           "1." * 100 + "1", "", ".", "1.", "x", "1..2", "\u0663", "99999999999", "1 2")
walked_text = st.one_of(
    st.text(max_size=40), st.integers(100, 2000).map(lambda n: "S" * n),
    st.sampled_from(["9" * 400, "9" * 5000, "-9" + "9" * 30, " 4 ", "nan", "1e400", "\x00",
                     "\ud800", "line\nbreak", "\u0663"]),
)
walked = st.one_of(
    st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 16]),  # the codes the profiles compare with
    st.integers(-(2**31), 2**64 - 1), st.integers(), st.just(BIG), st.booleans(), walked_text,
    octets.map(to_scalar),  # what a real walk holds for an OCTET STRING
)


def keys(profile: str) -> list[str]:
    """OIDs under one profile's tables: every column it reads and some it does not, or none,
    under every index of INDEXES; and keys no walk returns (a column that is no number)."""
    out = []
    for entry, columns in sorted(TABLES[profile].items()):
        for column in (*map(str, columns), "4294967295", "", "x"):
            out += [f"{entry}.{column}" + (f".{index}" if index else "") for index in INDEXES]
    return out


def walks(profile: str) -> st.SearchStrategy[dict[str, Scalar]]:
    """Walks of one profile's tables: part of a real recording or nothing, with up to 8
    hostile cells. A key is one draw from ``keys``: each draw costs a tenth of a
    millisecond, and 20,000 cases must fit in well under a minute."""
    cells = st.tuples(st.sampled_from(keys(profile)), walked)
    return st.tuples(st.sampled_from([{}, RECORDED[profile]]), st.lists(cells, max_size=8)).map(
        lambda w: {**w[0], **dict(w[1])})


def first_rows(path: Path, profile: str) -> dict[str, Scalar]:
    """A recording's cells in rows 1 and 2 of the tables ``profile`` reads (validating what a
    whole c7000 recording gives costs 10 ms a case)."""
    return {oid: value for oid, value in read_snmprec(path).items()
            if oid.rpartition(".")[2] in ("1", "2")
            and any(oid.startswith(entry + ".") for entry in TABLES[profile])}


RECORDED = {"hp-onboard-administrator": first_rows(HEALTHY, "hp-onboard-administrator"),
            "apc-rpdu2": first_rows(PDU, "apc-rpdu2")}


def publishable(profile: str, walk: dict[str, Scalar]) -> list[Outgoing]:
    """What a proxy would publish from ``walk``: birth, online, events and telemetry."""
    target = ProxyTarget(host="c7000-a", site="iad1", address="127.0.0.1",
                         community="public", profile=profile)
    rep = TargetReporter(target, itertools.count(1).__next__, lambda: NOW)
    result = rep.take(walk)
    return [rep.birth("s-1"), rep.state(True, session="s-1"), *rep.report_at(result, NOW)]


def strict_json(raw: bytes) -> Any:
    """Parse as a strict JSON reader does: no NaN or Infinity."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in a payload")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


@functools.lru_cache(maxsize=8192)
def contract_errors(kind: str, raw: bytes) -> tuple[str, ...]:
    """The contract's complaints about one encoded message (many cases repeat a message)."""
    return tuple(errors(kind, strict_json(raw)))


def check_walk(profile: str, walk: dict[str, Scalar]) -> list[Outgoing]:
    """Every message from ``walk`` keeps to the contract, as encoded for MQTT, and what was
    skipped is said in one line of bounded length."""
    skipped = Skipped()
    PROFILES[profile].parse(walk, skipped)
    PROFILES[profile].chassis(walk, skipped)
    assert len(str(skipped)) < 1000
    msgs = publishable(profile, walk)
    for m in msgs:
        assert contract_errors(m.kind, m.encode()) == (), (m.kind, m.payload)
    return msgs


OA = "1.3.6.1.4.1.232.22.2"


@settings(FAST, max_examples=3_250)
@given(walks("hp-onboard-administrator"))
@example({f"{OA}.5.1.1.1.16.1": 3, f"{OA}.5.1.1.1.10.1": "9" * 400})  # was: OverflowError
@example({f"{OA}.5.1.1.1.16." + "1." * 120 + "1": 3})  # was: a 243-character component id
@example({f"{OA}.5.1.1.1.16": 3})  # was: component id "psu:"
@example({f"{OA}.5.1.1.1.16.1": 3, f"{OA}.5.1.1.1.5.1": "S" * 300})  # was: a 300-char serial
def test_any_onboard_administrator_walk_publishes_only_valid_messages(
    walk: dict[str, Scalar],
) -> None:
    check_walk("hp-onboard-administrator", walk)


@settings(FAST, max_examples=3_250)
@given(walks("apc-rpdu2"))
@example({"1.3.6.1.4.1.318.1.1.26.6.3.1.5.1": "9" * 400})  # was: OverflowError (int / 10)
def test_any_pdu_walk_publishes_only_valid_messages(walk: dict[str, Scalar]) -> None:
    check_walk("apc-rpdu2", walk)


def test_a_hostile_value_is_skipped_with_its_reason_and_the_rest_is_kept() -> None:
    walk = read_snmprec(HEALTHY)
    walk[f"{OA}.5.1.1.1.10.2"] = "9" * 400  # supply 2's output watts
    walk[f"{OA}.5.1.1.1.5.3"] = "S" * 300  # supply 3's serial
    walk[f"{OA}.3.1.3.1.8." + "1." * 100 + "1"] = 3  # a fan under an index no id can hold
    skipped = Skipped()
    result = PROFILES["hp-onboard-administrator"].parse(walk, skipped)
    readings = {(r.component, r.metric): r.value for r in result.readings}
    assert readings[("psu:2", "psu.output_watts")] == 0.0
    assert readings[("psu:1", "psu.output_watts")] == 332.0
    assert {s.id: s.serial for s in result.states}["psu:3"] is None
    assert len(skipped.seen) == 3
    said = str(skipped)
    assert "out of SNMP's range" in said
    assert "text of 300 characters (at most 128)" in said
    assert "no column and index" in said
    assert len(said) < 1000  # one log line, whatever the walk held


def test_a_table_beyond_its_row_limit_stays_within_the_contract() -> None:
    walk: dict[str, Scalar] = {}
    for i in range(1, 5001):  # 5,000 supplies, fans and sensors: over 4,096 components
        walk[f"{OA}.5.1.1.1.16.{i}"] = 3
        walk[f"{OA}.3.1.3.1.8.{i}"] = 3
        walk[f"{OA}.3.1.2.1.6.{i}"] = 20
        walk[f"{OA}.3.3.1.1.5.{i}"] = 2
    started = time.monotonic()
    msgs = check_walk("hp-onboard-administrator", walk)
    (tele,) = [m.payload for m in msgs if m.kind == "telemetry"]
    assert len([c for c in tele["components"] if c["kind"] == "fan"]) == MAX_ROWS
    assert time.monotonic() - started < 30


# -- real datagrams at a real receiver -------------------------------------------------------


UDP_MAX = 65_507  # the largest UDP payload over IPv4


def v2c_trap(binds: list[tuple[Any, Any]], community: bytes = b"public") -> bytes:
    """A v2c SNMPv2-Trap message with exactly these bindings (no sysUpTime or trap OID
    added), BER-encoded as a device would send it."""
    msg = v2c.Message()
    msg.setComponentByPosition(0, 1)  # version: 1 is v2c
    msg.setComponentByPosition(1, community)
    pdu = v2c.SNMPv2TrapPDU()
    v2c.apiTrapPDU.set_defaults(pdu)
    v2c.apiTrapPDU.set_varbinds(pdu, binds)
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def v1_trap(rng: random.Random) -> bytes:
    """An SNMPv1 Trap with odd generic and specific codes and a binding of junk octets."""
    msg = v1.Message()
    v1.apiMessage.set_defaults(msg)
    v1.apiMessage.set_community(msg, "public")
    pdu = v1.TrapPDU()
    v1.apiTrapPDU.set_defaults(pdu)
    v1.apiTrapPDU.set_generic_trap(pdu, rng.randint(0, 6))
    v1.apiTrapPDU.set_specific_trap(pdu, rng.randint(0, 2**31 - 1))
    v1.apiTrapPDU.set_varbinds(pdu, [(rfc1902.ObjectName("1.3.6.1.4.1.9.9"),
                                      v1.OctetString(rng.randbytes(rng.randint(0, 40))))])
    v1.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def hostile_binds(rng: random.Random, many: int = 0) -> list[tuple[Any, Any]]:
    """Bindings no MIB defines: junk octets as the trap OID, a text snmpTrapAddress, a few
    or ``many``."""
    makers: list[Callable[[], Any]] = [
        lambda: rfc1902.OctetString(rng.randbytes(rng.randint(0, 100))),
        lambda: rfc1902.Integer32(rng.randint(-(2**31), 2**31 - 1)),
        lambda: rfc1902.Counter64(rng.randint(0, 2**64 - 1)),
        lambda: rfc1902.IpAddress(rng.randbytes(4)),
        lambda: rfc1902.ObjectIdentifier((1, 3, *(rng.randint(0, 2**32 - 1) for _ in range(50)))),
        lambda: rfc1902.TimeTicks(rng.randint(0, 2**32 - 1)),
        lambda: rfc1902.Opaque(rng.randbytes(8)),
        lambda: v2c.Null(""),
    ]
    binds = [(rfc1902.ObjectName(SNMP_TRAP_OID), rng.choice(makers)()),
             (rfc1902.ObjectName(SNMP_TRAP_ADDRESS), rfc1902.OctetString(b"\x00not-an-ip"))]
    for i in range(many or rng.choice([0, 1, 3, 10, 30])):
        binds.append((rfc1902.ObjectName((1, 3, 6, 1, 4, 1, rng.randint(0, 2**32 - 1), i)),
                      rng.choice(makers)()))
    return binds[:rng.randint(0, len(binds))]  # sometimes without snmpTrapOID


def datagrams(rng: random.Random, n: int) -> list[bytes]:
    """``n`` hostile datagrams: random bytes, truncated and bit-flipped traps, wrong
    communities, v1 traps with odd codes, v2c traps with hostile bindings."""
    out = []
    for i in range(n):
        kind = i % 6
        if i % 50 == 49:  # a thousand bindings and more, near what one datagram holds
            out.append(v2c_trap(hostile_binds(rng, many=1200)))
        elif kind == 0:
            out.append(rng.randbytes(rng.randint(0, 1400)))
        elif kind == 1:  # a trap cut short, or with one byte changed
            good = v2c_trap(hostile_binds(rng))
            cut = good[:rng.randint(0, len(good))]
            if cut and rng.random() < 0.5:
                at = rng.randrange(len(cut))
                cut = cut[:at] + bytes([rng.randrange(256)]) + cut[at + 1:]
            out.append(cut)
        elif kind == 2:
            out.append(v2c_trap(hostile_binds(rng), community=b"wrong"))
        elif kind == 3:
            out.append(v1_trap(rng))
        else:
            out.append(v2c_trap(hostile_binds(rng)))
    return [d[:UDP_MAX] for d in out]


ENCLOSURE_TRAP = "1.3.6.1.4.1.232.0.22013"  # what a c7000 sends when a supply fails
VALID_TRAP = [
    (rfc1902.ObjectName("1.3.6.1.2.1.1.3.0"), rfc1902.TimeTicks(100)),
    (rfc1902.ObjectName(SNMP_TRAP_OID), rfc1902.ObjectIdentifier(ENCLOSURE_TRAP)),
    (rfc1902.ObjectName("1.3.6.1.4.1.232.22.2.5.1.1.1.17.2"), rfc1902.Integer32(4)),
]


def test_a_trap_flood_of_hostile_datagrams_leaves_the_receiver_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(20261203)  # the same 500 datagrams each run
    flood = datagrams(rng, 500)
    got: list[Trap] = []

    async def run() -> int:
        port = free_udp_port()
        receiver = TrapReceiver(("127.0.0.1", port), "public", got.append)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i, datagram in enumerate(flood):
                tx.sendto(datagram, ("127.0.0.1", port))
                if i % 20 == 19:
                    await asyncio.sleep(0.005)  # let the receiver drain its socket buffer
            await asyncio.sleep(0.2)
            flooded = len(got)
            tx.sendto(v2c_trap(VALID_TRAP), ("127.0.0.1", port))
            deadline = time.monotonic() + 10
            while not any(t.trap_oid == ENCLOSURE_TRAP for t in got[flooded:]):
                assert time.monotonic() < deadline, "the valid trap did not arrive within 10 s"
                await asyncio.sleep(0.05)
            return receiver.dropped
        finally:
            tx.close()
            receiver.close()

    with caplog.at_level(logging.INFO):
        started = time.monotonic()
        dropped = asyncio.run(run())
    assert time.monotonic() - started < 15
    for t in got:
        check_trap(t)
    assert len(got) > 100  # the flood's readable traps were read, not just survived
    (valid,) = [t for t in got if t.trap_oid == ENCLOSURE_TRAP]
    assert valid.var_binds["1.3.6.1.4.1.232.22.2.5.1.1.1.17.2"] == 4
    assert dropped > 0  # some junk reached pysnmp's failing paths, and was caught
    assert not [r for r in caplog.records if r.name == "asyncio"]  # no tracebacks per datagram
    said = [r for r in caplog.records if r.name == "agent.snmp"]
    assert len(said) <= 20 + 1  # one window's burst, and maybe its count
    assert all(len(r.getMessage()) < 2000 for r in said)
