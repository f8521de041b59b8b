"""Property tests: no payload on a host's command topic makes `parse_resend` raise.

Anyone who may publish on hg/v1/{site}/{host}/cmd/resend reaches this parser. Every case
must come back as a Resend or as a short reason; a Resend only for a command that
schemas/mqtt/resend.json accepts and that names this host and site; and every command
built by the schema's rules is taken with its own fields. About 14,000 cases in all,
some 30 s of one core (the fuzz suite runs beside the main suite in CI).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.commands import MAX_BYTES, MAX_RANGE, MAX_SEQ, Resend, parse_resend
from schemas.mqtt_contract import command_errors

pytestmark = pytest.mark.fuzz
HOST, SITE = "web-01", "iad1"
VALID: dict[str, Any] = {"v": 1, "kind": "resend", "host": HOST, "site": SITE,
                         "first_seq": 40, "last_seq": 49, "gap": 7,
                         "ts": "2026-12-03T09:00:00.000Z"}
FIELDS = tuple(VALID)
#: The longest reason the agent logs: "unknown fields" names five keys of 40 characters.
MAX_REASON = 300
# The same settings as the collector's decode fuzz: no example database, so CI and a
# laptop run the same kind of cases; large generated values are wanted here.
FAST = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(payload: bytes, host: str = HOST, site: str = SITE) -> Resend | str:
    """parse_resend one payload and hold the answer to the contract."""
    got = parse_resend(payload, host, site)
    if isinstance(got, str):
        assert got
        assert len(got) <= MAX_REASON
        return got
    body = json.loads(payload)  # it parsed once already; the Schema sees the same value
    assert command_errors("resend", body) == [], f"accepted {payload[:300]!r}"
    assert (body["host"], body["site"]) == (host, site)
    assert (got.first_seq, got.last_seq, got.gap) == (
        body["first_seq"], body["last_seq"], body.get("gap"))
    assert 0 <= got.last_seq - got.first_seq < MAX_RANGE
    return got


def dumps(value: Any) -> bytes:
    """JSON as a careless encoder writes it: NaN and Infinity, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def with_field(field: str, raw: str) -> bytes:
    """The valid command with one field's value written as the raw JSON text ``raw``."""
    return json.dumps({**VALID, field: "@RAW@"}).replace('"@RAW@"', raw).encode()


# Values a hostile publisher might put anywhere: huge and non-finite numbers, bools where
# integers belong, NUL, lone surrogates, long strings, deep structures.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=MAX_SEQ - 3, max_value=MAX_SEQ + 3),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.builds(lambda ch, n: ch * n, st.characters(), st.integers(min_value=100, max_value=2_000)),
    st.sampled_from(["\x00", "\ud800", "\udfff", "web-01\x00", "1", "resend", HOST, SITE,
                     "2026-12-03T09:00:00Z", "", "\u202eweb-01"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=10)


@settings(FAST, max_examples=5_000)
@given(payload=st.binary(max_size=600))
def test_arbitrary_bytes(payload: bytes) -> None:
    check(payload)


@pytest.mark.parametrize("size", [MAX_BYTES - 1, MAX_BYTES, MAX_BYTES + 1, 10 * MAX_BYTES])
def test_the_size_limit_counts_bytes_not_json(size: int) -> None:
    """A valid command padded with JSON whitespace: taken up to MAX_BYTES, refused past it."""
    text = dumps(VALID)
    payload = text[:-1] + b" " * (size - len(text)) + b"}"
    assert len(payload) == size
    assert isinstance(check(payload), str) == (size > MAX_BYTES)
    assert isinstance(check(b"[" * size), str)


@pytest.mark.parametrize(("first", "last", "taken"), [
    (40, 40, True), (40, 40 + MAX_RANGE - 1, True), (40, 40 + MAX_RANGE, False),
    (40, 39, False), (MAX_SEQ, MAX_SEQ, True), (0, 5, False), (1, MAX_SEQ + 1, False)])
def test_the_range_limit(first: int, last: int, taken: bool) -> None:
    """At most MAX_RANGE seqs, first to last inclusive (resend.json: last <= first + 9999)."""
    got = check(dumps({**VALID, "first_seq": first, "last_seq": last}))
    assert isinstance(got, Resend) == taken


@settings(FAST, max_examples=1_000)
@given(value=documents)
def test_arbitrary_json(value: Any) -> None:
    check(dumps(value))


def near(field: str) -> st.SearchStrategy[Any]:
    """A value for ``field``: the valid one, one of its type nearly right, or anything."""
    typed: st.SearchStrategy[Any] = (
        st.integers(min_value=-2, max_value=MAX_SEQ + 2) if field in (
            "v", "first_seq", "last_seq", "gap") else st.sampled_from(
            [HOST, SITE, "resend", "web-02", "IAD1", "2026-12-03T09:00:00Z", " web-01"]))
    return st.one_of(st.just(VALID[field]), typed, documents)


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    """Some of the command's fields, each nearly valid or hostile."""
    fields = draw(st.sets(st.sampled_from(FIELDS), min_size=1))
    return {f: draw(near(f)) for f in FIELDS if f in fields}


@settings(FAST, max_examples=1_200)
@given(body=objects())
def test_objects_of_the_commands_fields_with_any_values(body: dict[str, Any]) -> None:
    check(dumps(body))


@settings(FAST, max_examples=1_500)
@given(field=st.sampled_from(FIELDS), value=documents)
@example(field="v", value=True)  # True == 1 in Python; not in JSON Schema
@example(field="gap", value=None)  # the Schema's gap is an integer when it is there
@example(field="ts", value="garbage")
@example(field="ts", value="")
@example(field="first_seq", value=True)
@example(field="last_seq", value=49.0)
@example(field="host", value="web-01\x00")
def test_a_valid_command_with_one_hostile_field(field: str, value: Any) -> None:
    check(dumps({**VALID, field: value}))


@settings(FAST, max_examples=500)
@given(field=st.sampled_from(FIELDS),
       number=st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "-0",
                               "0", "1.5", "1e0", "40.0", "9" * 4_000, "-" + "9" * 3_000,
                               "9007199254740991", "9007199254740992", "18446744073709551616",
                               "true", "false", "null"]))
def test_huge_non_finite_and_not_quite_integer_numbers(field: str, number: str) -> None:
    check(with_field(field, number))


@settings(FAST, max_examples=1_000)
@given(field=st.sampled_from([*FIELDS, "extra", "__proto__", "V", "host "]),
       where=st.sampled_from(["first", "last"]), value=scalars)
def test_duplicate_and_unknown_keys(field: str, where: str, value: Any) -> None:
    text = json.dumps(VALID)
    pair = json.dumps(field) + ": " + json.dumps(value, allow_nan=True)
    payload = "{" + pair + ", " + text[1:] if where == "first" else text[:-1] + ", " + pair + "}"
    check(payload.encode())


@settings(FAST, max_examples=600)
@given(depth=st.integers(min_value=1, max_value=3_000),
       opener=st.sampled_from(["[", '{"a":', '{"gap":[', '[{"b":']),
       closed=st.booleans(), where=st.sampled_from(["top", "gap", "extra"]))
def test_deep_nesting(depth: int, opener: str, closed: bool, where: str) -> None:
    closer = {"[": "]", '{"a":': "}", '{"gap":[': "]}", '[{"b":': "}]"}[opener]
    deep = opener * depth + "1" + (closer * depth if closed else "")
    payload = deep.encode() if where == "top" else with_field(where, deep)
    assert isinstance(check(payload), str)


@settings(FAST, max_examples=1_500)
@given(drop=st.sets(st.sampled_from(FIELDS), max_size=3), at=st.integers(min_value=0),
       cut=st.booleans(), junk=st.binary(min_size=1, max_size=8))
def test_byte_mutations_of_a_valid_command(drop: set[str], at: int, cut: bool,
                                           junk: bytes) -> None:
    payload = dumps({k: v for k, v in VALID.items() if k not in drop})
    at %= len(payload) + 1
    check(payload[:at] if cut else payload[:at] + junk + payload[at:])


@settings(FAST, max_examples=500)
@given(host=st.text(max_size=80), site=st.text(max_size=80))
def test_a_valid_command_for_another_host_or_site_is_refused(host: str, site: str) -> None:
    payload = dumps({**VALID, "host": host, "site": site})
    got = check(payload)  # this agent is web-01 at iad1
    assert isinstance(got, str) == ((host, site) != (HOST, SITE))


# -- every command the Schema allows is taken ------------------------------------------

IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
idents = st.from_regex(IDENT, fullmatch=True)
seqs = st.integers(min_value=1, max_value=MAX_SEQ)
#: Naive on purpose: st.datetimes draws wall times, written as UTC with a Z below.
EPOCH, LATEST = datetime(1970, 1, 1), datetime(9999, 12, 31, 23, 59, 59)  # noqa: DTZ001
# RFC 3339 in UTC with a Z, as envelope.json's timestamp pattern and format say
timestamps = st.builds(
    lambda at, digits: at.isoformat(timespec="seconds") + (f".{digits}" if digits else "") + "Z",
    st.datetimes(min_value=EPOCH, max_value=LATEST),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,12}", fullmatch=True)))


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A resend command by the Schema's rules: the range within MAX_RANGE, gap optional."""
    first = draw(seqs)
    last = min(MAX_SEQ, first + draw(st.integers(min_value=0, max_value=MAX_RANGE - 1)))
    body: dict[str, Any] = {"v": 1, "kind": "resend", "host": draw(idents),
                            "site": draw(idents), "first_seq": first, "last_seq": last,
                            "ts": draw(timestamps)}
    if draw(st.booleans()):
        body["gap"] = draw(seqs)
    return body


def escape_some(text: str, which: list[bool]) -> str:
    """JSON text with some of its string characters written as \\uXXXX escapes."""
    out, inside = [], False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            inside = not inside
        elif inside and which[i % len(which)] and ch.isalnum():
            out.append(f"\\u{ord(ch):04x}")
            continue
        out.append(ch)
    return "".join(out)


@settings(FAST, max_examples=1_500)
@given(body=commands(), order=st.randoms(use_true_random=False),
       spacing=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n\t", " :\r\n ")]),
       which=st.lists(st.booleans(), min_size=1, max_size=7))
def test_every_command_the_schema_allows_is_taken(
    body: dict[str, Any], order: Any, spacing: tuple[str, str], which: list[bool],
) -> None:
    assert command_errors("resend", body) == []
    items = list(body.items())
    order.shuffle(items)
    text = escape_some(json.dumps(dict(items), separators=spacing), which)
    payload = text.encode()
    assert len(payload) <= MAX_BYTES
    got = check(payload, body["host"], body["site"])
    assert got == Resend(body["first_seq"], body["last_seq"], body.get("gap"))

