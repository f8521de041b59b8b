"""Property tests: no bytes a customer server can publish make `decode` raise.

Every strategy reaches `decode` the way the broker hands it a payload, under each kind's
topic. Together they run 100,000 cases (CI's floor for this parser); each case must come
back as a Message that the JSON Schema accepts or as a DeadLetter whose reason PostgreSQL
can store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.decode import MAX_DEPTH, MAX_REASON, decode, too_deep
from collector.model import DeadLetter, Message, Received
from schemas.mqtt_contract import errors

pytestmark = pytest.mark.fuzz
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
EXAMPLES = resources.files("schemas").joinpath("mqtt", "examples")
KINDS = ("telemetry", "birth", "event", "state")
VALID = {k: json.loads(EXAMPLES.joinpath(f"{k}.valid.json").read_text()) for k in KINDS}
# 100,000 examples in all (the floor for this parser in CI), weighted where hostile input
# is richest; no example database, so CI and a laptop run the same cases' kind.
FAST = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(kind: str, payload: bytes, host: str = "web-01") -> Message | DeadLetter:
    """decode one payload under kind's topic and hold the result to the contract."""
    site = VALID[kind]["site"]
    got = decode(Received(f"hg/v1/{site}/{host}/{kind}", payload, 1, 1, NOW))
    if isinstance(got, DeadLetter):
        assert got.reason
        assert "\x00" not in got.reason
        assert "\x00" not in got.topic
        assert len(got.reason) <= MAX_REASON
        assert got.payload == payload
    else:
        assert got.kind == kind
        assert got.host == host
        assert 1 <= got.seq <= 2**53 - 1
        try:
            body = got.body or lenient(payload)
        except RecursionError:
            # an unknown key nested too deep for any Python parser (the typed telemetry
            # decode skips it; the schema allows unknown top-level keys): what is checked is
            # the telemetry the collector took from it
            body = json.loads(msgspec.json.encode(got.telemetry))
        assert errors(kind, body) == []
    return got


def lenient(payload: bytes) -> Any:
    """The JSON as the Schema sees it, however large its numbers (typed decoding skips an
    unknown key's value; json.loads would refuse a 5,000-digit integer)."""
    return json.loads(payload, parse_int=lambda s: int(s) if len(s) < 4000 else float("inf"))


kinds = st.sampled_from(KINDS)
# Values a hostile agent might put anywhere: huge and non-finite numbers, NUL, lone
# surrogates' escapes, long strings, deep structures.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["\x00", "\ud800", "1e400", "-0", "9" * 400]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=10)


def dumps(value: Any) -> bytes:
    """JSON as a careless encoder writes it: NaN and Infinity, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


@settings(FAST, max_examples=42_000)
@given(kind=kinds, payload=st.binary(max_size=600))
def test_arbitrary_bytes(kind: str, payload: bytes) -> None:
    check(kind, payload)


@settings(FAST, max_examples=8_000)
@given(kind=kinds, value=documents)
def test_arbitrary_json(kind: str, value: Any) -> None:
    check(kind, dumps(value))


@settings(FAST, max_examples=10_000)
@given(kind=kinds, field=st.sampled_from(["seq", "v", "ts", "host", "site", "kind",
                                          "interval_s", "readings", "components", "state",
                                          "evidence", "session", "detected_at", "status"]),
       value=documents)
def test_valid_envelope_with_one_hostile_field(kind: str, field: str, value: Any) -> None:
    check(kind, dumps({**VALID[kind], field: value}))


@settings(FAST, max_examples=10_000)
@given(kind=kinds, depth=st.integers(min_value=1, max_value=5_000),
       opener=st.sampled_from(["[", '{"a":', '{"a":[', "[{\"b\":"]),
       closed=st.booleans(), where=st.sampled_from(["top", "inside"]))
def test_deep_nesting(kind: str, depth: int, opener: str, closed: bool, where: str) -> None:
    closer = {"[": "]", '{"a":': "}", '{"a":[': "]}", '[{"b":': "}]"}[opener]
    deep = opener * depth + "1" + (closer * depth if closed else "")
    if where == "top":
        payload = deep.encode()
    else:  # a valid envelope carrying the nesting in a field the contract leaves open
        text = json.dumps(VALID[kind])
        payload = (text[:-1] + ', "extra": ' + deep + "}").encode()
    got = check(kind, payload)
    if depth > MAX_DEPTH + 2 and where == "top":
        assert isinstance(got, DeadLetter)


@settings(FAST, max_examples=200)  # 192 combinations: Hypothesis runs each once
@given(kind=kinds, number=st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-0",
                                           "1" + "0" * 30, "-7", "0", "1.5", "9" * 5000,
                                           "18446744073709551616", "9007199254740992"]),
       field=st.sampled_from(["seq", "v", "interval_s", "value"]))
def test_huge_and_non_finite_numbers(kind: str, number: str, field: str) -> None:
    body = dict(VALID[kind])
    text = json.dumps({**body, field: "@N@"}).replace('"@N@"', number)
    got = check(kind, text.encode())
    if field == "seq" and number not in ("9007199254740992",):
        assert isinstance(got, DeadLetter) or 1 <= got.seq <= 2**53 - 1


@settings(FAST, max_examples=8_000)
@given(kind=kinds, key=st.sampled_from(["v", "seq", "host", "kind", "ts", "site"]),
       value=scalars)
def test_duplicate_keys(kind: str, key: str, value: Any) -> None:
    text = json.dumps(VALID[kind])
    payload = ("{" + json.dumps(key) + ": " + json.dumps(value, allow_nan=True) + ", "
               + text[1:]).encode()
    check(kind, payload)
    payload = (text[:-1] + ", " + json.dumps(key) + ": "
               + json.dumps(value, allow_nan=True) + "}").encode()
    check(kind, payload)


@settings(FAST, max_examples=17_000)
@given(kind=kinds, at=st.integers(min_value=0, max_value=10_000),
       junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b)))
def test_invalid_utf8_spliced_into_valid_payloads(kind: str, at: int, junk: bytes) -> None:
    payload = json.dumps(VALID[kind]).encode()
    at %= len(payload)
    check(kind, payload[:at] + junk + payload[at:])


@settings(FAST, max_examples=3_000)
@given(kind=kinds, host=st.text(max_size=80))
def test_a_valid_payload_under_any_host(kind: str, host: str) -> None:
    if "/" in host or not host:
        return
    got = check(kind, json.dumps(VALID[kind]).encode(), host=host)
    if host != VALID[kind]["host"]:
        assert isinstance(got, DeadLetter)


@settings(FAST, max_examples=2_000)
@given(payload=st.binary(max_size=2_000))
def test_too_deep_never_raises_and_bounds_depth(payload: bytes) -> None:
    assert too_deep(payload) in (True, False)


def _utf8(b: bytes) -> bool:
    try:
        b.decode()
    except UnicodeDecodeError:
        return False
    return True
