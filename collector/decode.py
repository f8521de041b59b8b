"""Turns raw MQTT messages into validated Messages or DeadLetters with a reason. Pure.

msgspec (collector.wire) validates on the hot path, and telemetry stays the typed value
it decoded to; a refused payload is run through the JSON Schema too, so the dead letter
carries the contract's own readable reason.
"""

from __future__ import annotations

import logging

import msgspec

from collector import wire
from collector.model import DeadLetter, Message, Received, parse_ts
from schemas.mqtt_contract import KINDS, errors

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1_048_576  # 1 MiB: far above a 4,096-component birth; anything larger is abuse


def decode(raw: Received) -> Message | DeadLetter:
    """Validate topic and payload; return the message or why it was refused."""

    def dead(reason: str) -> DeadLetter:
        return DeadLetter(raw.topic, reason, raw.payload, raw.received_at)

    parts = raw.topic.split("/")
    if len(parts) != 5 or parts[0] != "hg" or parts[1] != "v1":
        return dead("topic is not hg/v1/{site}/{host}/{kind}")
    _, _, site, host, kind = parts
    if kind not in KINDS:
        return dead(f"unknown kind {kind!r} in topic; expected one of {', '.join(KINDS)}")
    if len(raw.payload) > MAX_PAYLOAD:
        return dead(f"payload of {len(raw.payload)} bytes exceeds {MAX_PAYLOAD}")
    problem: str | None = None
    try:
        if kind == "telemetry":  # the hot path: one typed decode, no dicts
            got = wire.parse(kind, raw.payload)
            if isinstance(got, wire.Telemetry):
                if why := _mismatch(site, host, kind, got.site, got.host, got.kind):
                    return dead(why)
                return Message(kind, host, site, got.seq, parse_ts(got.ts), {},
                               raw.received_at, got, raw.payload)
            problem = got if isinstance(got, str) else None
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
        return "schema: " + "; ".join(problems[:5])
    log.warning("msgspec refused what the JSON Schema accepts (%s): fix collector/wire.py", fast)
    return fast
