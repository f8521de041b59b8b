"""Encodes telemetry as one wide row per message in PostgreSQL's binary COPY format. Pure.

A row is (time, host number, metric-set id, v real[], x double precision[], d bytea):
the message's readings in order, each value in `v` when float4 holds it exactly
(integers below 2^24, halves, quarters: what most sensors report); else, when it is a
decimal of few digits (41.3 °C, 12.08 V, 0.37), in `v` as the integer value x 10^k, which
float4 holds exactly, with k and the element's bit in `d`; else in `x` at full precision,
NULL in `x` elsewhere (`v` holds 0 there: `x` is read first, and a `v` without NULLs
keeps no null bitmap). `x` is NULL when no value needs it, `d` when none is scaled, `v`
when every value is in `x`, so a row costs about 4 bytes a value and
nothing is rounded: n / 10^k, both exact doubles, is correctly rounded to the double
nearest the decimal, which is the double the agent sent (migration 029,
`telemetry_value(x, v, d, i)` in SQL reads it back).

`d` is one byte k (1..MAX_DIGITS), then a bitmap of the elements that are scaled, bit i
(from 0) in byte 1 + i // 8 at weight 2^(i % 8), as PostgreSQL's `get_bit` counts.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from collector import wire
from collector.model import Message

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FLOAT4_OID, FLOAT8_OID, TEXT_OID = 700, 701, 25  # pg_type oids: real, double precision, text
_HEAD = struct.Struct("!hiqiiii")  # 6 fields; time (len, µs); host (len, int4); set (len, int4)
_ARRAY = struct.Struct("!iiiiii")  # field length; ndim, has-nulls flag, element oid; dim, lbound
_NULL = struct.pack("!i", -1)
_LEN = struct.Struct("!i")
_SET_HEAD = struct.Struct("!hi")  # 3 fields (digest, components, metrics); the digest's length
_FLOAT4_MAX = 3.4028234663852886e38  # larger values are not float4 (struct would refuse)
_F4_INT = 1 << 24  # float4 holds every integer below 2^24 exactly, not all above
MAX_DIGITS = 6  # decimals tried: a sensor reading has 1-3; 6 keeps a few significant digits
_P10 = tuple(10.0 ** k for k in range(MAX_DIGITS + 1))  # exact doubles (up to 10^22 are)
_NULLS2 = _NULL + _NULL  # x and d both NULL

SetKey = tuple[tuple[str, str], ...]  # a message's (component, metric) pairs in order


def set_key(m: Message) -> str:
    """The message's metric set as one string, the cache's key: wire.readings_key, as
    decode found it (or found now, for a message built past decode). One string, not 40
    tuples, for the garbage collector to walk (profiled: the tuples' collections were most
    of resolving a set). Readings whose names would make that string ambiguous (names
    holding '/' or a newline, which decode refuses) get their pairs' repr after a NUL,
    which no readings_key starts with (a component id starts with its kind)."""
    key = m.set_key or wire.readings_key(m.telemetry.readings)
    return key or "\0" + repr(set_pairs(m))


def set_pairs(m: Message) -> SetKey:
    """The message's metric set: its readings' (component, metric) pairs, in order."""
    return tuple([(r.component, r.metric) for r in m.telemetry.readings])


def digest(key: SetKey) -> bytes:
    """SHA-256 of the pairs, each name UTF-8 and NUL-terminated (text never holds NUL);
    migration 019 computes the same in SQL for the rows it converts."""
    return hashlib.sha256(b"".join(c.encode() + b"\0" + m.encode() + b"\0"
                                   for c, m in key)).digest()


def _micros(ts: datetime) -> int:
    """Microseconds since PostgreSQL's epoch, exactly (no float rounding)."""
    delta = ts - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def fits_float4(value: float) -> bool:
    """Whether float4 holds the value exactly (NaN and the infinities too)."""
    if math.isnan(value) or math.isinf(value):
        return True
    if abs(value) > _FLOAT4_MAX:
        return False
    return bool(struct.unpack("f", struct.pack("f", value))[0] == value)


_F4_ELEM, _F8_ELEM = struct.Struct("!if"), struct.Struct("!id")  # length 4 / 8, value


def _array(oid: int, width: str, values: Sequence[float | None]) -> bytes:
    """One binary array field; None elements are NULL."""
    elem = _F4_ELEM.pack if width == "f" else _F8_ELEM.pack
    size = 4 if width == "f" else 8
    body = b"".join([_NULL if v is None else elem(size, v) for v in values])
    nulls = int(None in values)
    return _ARRAY.pack(20 + len(body), 1, nulls, oid, len(values), 1) + body


_SLOTS: dict[int, bytes] = {}  # per length: n (len 4, value 0) element slots of a real[]
_F4: dict[int, struct.Struct] = {}  # per length: n big-endian float4s


def _f4(n: int) -> struct.Struct:
    st = _F4.get(n)
    if st is None:
        st = _F4[n] = struct.Struct(f"!{n}f")
    return st


def _dense4(packed: bytes, n: int) -> bytes:
    """A real[] without NULLs from its n packed big-endian float4s (the pack the
    exactness test made): each 4 bytes go after a 4-byte length, by strided slice copies
    (3.9 µs for 40 values with the test, a struct of 2n fields 4.1)."""
    slots = _SLOTS.get(n)
    if slots is None:
        slots = _SLOTS[n] = b"\x00\x00\x00\x04\x00\x00\x00\x00" * n
    body = bytearray(slots)
    for k in range(4):
        body[4 + k::8] = packed[k::4]
    return _ARRAY.pack(20 + 8 * n, 1, 0, FLOAT4_OID, n, 1) + body


def digits(value: float) -> int:
    """The fewest decimals k (1..MAX_DIGITS) with value == n / 10^k for an integer n below
    2^24 in magnitude, or 0 when there is none (values float4 holds are not asked)."""
    if not abs(value) < _F4_INT:  # n would be beyond float4's integers (NaN and inf too)
        return 0
    top = _P10[MAX_DIGITS]
    if round(value * top) / top != value:  # no decimal of up to 6 digits (random doubles):
        return 0  # one test instead of six (below 2^24 x 10^6 < 2^53 the product is exact)
    for k in range(1, MAX_DIGITS + 1):
        p = _P10[k]
        n = round(value * p)
        if abs(n) >= _F4_INT:
            return 0
        if n / p == value:
            return k
    return 0


def _scaled(value: float, k: int) -> float | None:
    """value x 10^k as an exact float4 integer if it reads back as value, else None."""
    p = _P10[k]
    n = round(value * p)
    return float(n) if abs(n) < _F4_INT and n / p == value else None


def _scale(values: Sequence[float], fit: Sequence[bool]) -> tuple[int, list[float | None]]:
    """One k for the row (the one that scales most of the values float4 does not hold)
    and each value scaled by it, or None where it does not scale (or fits as it is)."""
    ks = {digits(v) for v, ok in zip(values, fit, strict=True) if not ok} - {0}
    best: tuple[int, list[float | None]] = (0, [None] * len(values))
    most = 0
    for k in sorted(ks, reverse=True):  # the largest k first: it usually scales them all
        got = [None if ok else _scaled(v, k) for v, ok in zip(values, fit, strict=True)]
        n = sum(g is not None for g in got)
        if n > most:
            best, most = (k, got), n
        if most == len(values) - sum(fit):
            break
    return best


def _d_field(k: int, scaled: Sequence[float | None]) -> bytes:
    """The d field: k, then the bitmap of scaled elements."""
    bits = bytearray(1 + (len(scaled) + 7) // 8)
    bits[0] = k
    for i, s in enumerate(scaled):
        if s is not None:
            bits[1 + i // 8] |= 1 << (i % 8)
    return _LEN.pack(len(bits)) + bytes(bits)


def value_fields(values: Sequence[float]) -> bytes:
    """The v, x and d fields of a row holding these values, losslessly."""
    n = len(values)
    st = _f4(n)
    try:
        packed = st.pack(*values)
        exact = st.unpack(packed) == tuple(values)
    except OverflowError:  # a value beyond float4's range
        exact = False
    if exact:
        return _dense4(packed, n) + _NULLS2
    # array('f') rounds each value to float4 (beyond its range: inf), as fits_float4 asks
    fit = [a == v or v != v for a, v in zip(array("f", values), values, strict=True)]
    k, scaled = _scale(values, fit)
    x8 = [None if ok or s is not None else v
          for v, ok, s in zip(values, fit, scaled, strict=True)]
    # v holds 0 where x has the value (x is read first): v without NULLs has no null
    # bitmap, 8 bytes a row less; v is NULL when x holds every value
    v4: list[float | None] = [v if ok else 0.0 if s is None else s
                              for v, ok, s in zip(values, fit, scaled, strict=True)]
    vf = _NULL if None not in x8 else _array(FLOAT4_OID, "f", v4)
    xf = _NULL if all(v is None for v in x8) else _array(FLOAT8_OID, "d", x8)
    return vf + xf + (_d_field(k, scaled) if k else _NULL)


def encode(messages: Iterable[Message], hosts: Mapping[str, int],
           sets: Mapping[tuple[str, int], int]) -> tuple[bytes, int, int]:
    """The COPY stream of the messages' wide rows; (stream, rows, values).

    Every message with readings must have its host in `hosts` and its metric set's id in
    `sets`, by (host, seq).
    """
    parts = [SIGNATURE]
    rows = values = 0
    for m in messages:
        if m.snapshot is None or not m.snapshot.readings:
            continue
        readings = m.snapshot.readings
        head = _HEAD.pack(6, 8, _micros(m.ts), 4, hosts[m.host], 4, sets[(m.host, m.seq)])
        parts.append(head + value_fields([r.value for r in readings]))
        rows += 1
        values += len(readings)
    parts.append(TRAILER)
    return b"".join(parts), rows, values


def _text_array(encoded: Sequence[bytes]) -> bytes:
    """One binary text[] field of these UTF-8 names (no NULLs)."""
    body = b"".join([_LEN.pack(len(e)) + e for e in encoded])
    return _ARRAY.pack(20 + len(body), 1, 0, TEXT_OID, len(encoded), 1) + body


def encode_sets(keys: Iterable[SetKey]) -> tuple[bytes, list[bytes]]:
    """The COPY stream of (digest, components, metrics) rows of these metric sets, and
    their digests in the same order (each name encoded once for both)."""
    parts = [SIGNATURE]
    digests = []
    for key in keys:
        cs = [c.encode() for c, _ in key]
        ms = [m.encode() for _, m in key]
        d = hashlib.sha256(b"".join([x for c, m in zip(cs, ms, strict=True)
                                     for x in (c, b"\0", m, b"\0")])).digest()
        digests.append(d)
        parts.append(_SET_HEAD.pack(3, len(d)) + d + _text_array(cs) + _text_array(ms))
    parts.append(TRAILER)
    return b"".join(parts), digests
