"""Turns raw MQTT messages into validated Messages or DeadLetters with a reason. Pure.

msgspec (collector.wire) validates on the hot path, and telemetry stays the typed value
it decoded to; a refused payload is run through the JSON Schema too, so the dead letter
carries the contract's own readable reason.

Nothing a payload holds may escape as an exception: whatever decoding or validation
raises becomes a dead letter that names it, so one hostile message can never stop the
collector (an escaped RecursionError once killed the network thread, and the broker
redelivered the same payload to every restart).
"""

from __future__ import annotations

import logging

import msgspec

from collector import wire
from collector.model import DeadLetter, Message, Received
from collector.timestamps import parse_ts
from schemas.mqtt_contract import KINDS, errors

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1_048_576  # 1 MiB: far above a 4,096-component birth; anything larger is abuse
# The contract's deepest payload is a birth (envelope, components, item, attrs, a value):
# 5 levels. 32 leaves room for the contract to grow and is far below the interpreter's
# recursion limit (1,000) that a recursive decoder or the JSON Schema validator hits.
MAX_DEPTH = 32
MAX_REASON = 2_000  # characters of a reason kept: enough for five schema errors
_TOO_DEEP = f"JSON nests deeper than {MAX_DEPTH} levels (the contract needs 5); not parsed"
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def too_deep(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than limit, judged without parsing.

    Escapes are dropped first, so every remaining quote delimits a string; the text outside
    strings is reduced to its brackets, and each pass removes the innermost pairs. Linear
    in the payload per pass and at most limit passes: 0.05 s for the 200 KB of brackets
    that once stopped ingest, 0.15 s for 1 MiB of them (the cap), microseconds for a
    payload of the contract's shape.
    """
    unescaped = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[0::2]).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        inner = brackets.replace(b"{}", b"").replace(b"[]", b"")
        if inner == brackets:
            break  # unbalanced: no depth beyond what is left; the decoder says what is wrong
        brackets = inner
    return len(brackets) > limit


def clean(text: str, limit: int = MAX_REASON) -> str:
    """Text PostgreSQL can store (no NUL), cut to limit characters."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def decode(raw: Received) -> Message | DeadLetter:
    """Validate topic and payload; return the message or why it was refused. Never raises."""
    try:
        return _decode(raw)
    except Exception as exc:  # anything a payload provokes: RecursionError, MemoryError, ...
        return DeadLetter(clean(raw.topic), clean(f"refused: {type(exc).__name__} while "
                                                  f"decoding: {exc}"),
                          raw.payload, raw.received_at)


def _decode(raw: Received) -> Message | DeadLetter:
    """decode, allowed to raise on what it did not foresee."""

    def dead(reason: str) -> DeadLetter:
        return DeadLetter(clean(raw.topic), clean(reason), raw.payload, raw.received_at)

    parts = raw.topic.split("/")
    if len(parts) != 5 or parts[0] != "hg" or parts[1] != "v1":
        return dead("topic is not hg/v1/{site}/{host}/{kind}")
    _, _, site, host, kind = parts
    if kind not in KINDS:
        return dead(f"unknown kind {kind[:64]!r} in topic; expected one of {', '.join(KINDS)}")
    if len(raw.payload) > MAX_PAYLOAD:
        return dead(f"payload of {len(raw.payload)} bytes exceeds {MAX_PAYLOAD}; not parsed")
    problem: str | None = None
    if kind == "telemetry":  # the hot path: one typed decode, no dicts
        # The typed decoder descends only as deep as the types; an unknown key it skips
        # is guarded by msgspec's recursion check (RecursionError in microseconds, caught
        # by decode), so the depth scan (costlier than this decode) waits for a refusal.
        try:
            got = wire.parse_telemetry(raw.payload)
        except msgspec.DecodeError as exc:
            return dead(f"not JSON: {exc}")
        except RecursionError:
            return dead(_TOO_DEEP)
        if isinstance(got, str):
            problem = got
        else:
            tele, key = got
            if why := _mismatch(site, host, kind, tele.site, tele.host, tele.kind):
                return dead(why)
            return Message(kind, host, site, tele.seq, parse_ts(tele.ts), {},
                           raw.received_at, tele, raw.payload, key)
    if too_deep(raw.payload):
        return dead(_TOO_DEEP)
    try:
        body = msgspec.json.decode(raw.payload)
    except msgspec.DecodeError as exc:
        return dead(f"not JSON: {exc}")
    problem = problem or wire.check(kind, raw.payload)  # telemetry's was found above
    if problem:
        return dead(_reason(kind, body, problem))
    if why := _mismatch(site, host, kind, body["site"], body["host"], body["kind"]):
        return dead(why)
    return Message(kind, host, site, int(body["seq"]), parse_ts(body["ts"]), body,
                   raw.received_at, payload=raw.payload)


def _mismatch(site: str, host: str, kind: str, body_site: str, body_host: str,
              body_kind: str) -> str | None:
    """Why a valid payload does not belong under its topic, or None when it does."""
    if body_host != host or body_site != site:
        return f"payload names {body_site}/{body_host} but was published under {site}/{host}"
    if body_kind != kind:
        return f"payload kind {body_kind!r} does not match topic kind {kind!r}"
    return None


def _reason(kind: str, body: object, fast: str) -> str:
    """The JSON Schema's words for a refusal; msgspec's if the two ever disagree."""
    problems = errors(kind, body)
    if problems:
        return "schema: " + "; ".join(p[:300] for p in problems[:5])
    log.warning("msgspec refused what the JSON Schema accepts (%s): fix collector/wire.py", fast)
    return fast
