"""Commands the collector sends one agent, on hg/v1/{site}/{host}/cmd/{command}.

The only command is ``resend`` (schemas/mqtt/resend.json): the collector saw a gap in
this host's seqs, so a message the broker acknowledged never reached the database; the
agent sends the range again from its spool. Parsing never raises: the payload comes off
the network and whatever it holds is answered with a reason, never a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agent.messages import TOPIC_ROOT

#: A resend asks for at most this many seqs (schemas/mqtt/resend.json).
MAX_RANGE = 10_000
#: Bigger than any valid command: refused before it is parsed.
MAX_BYTES = 4096
MAX_SEQ = 2**53 - 1
_FIELDS = {"v", "kind", "host", "site", "first_seq", "last_seq", "gap", "ts"}
#: The envelope's timestamp pattern (RFC 3339 in UTC with a Z); \Z: no newline after it.
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z\Z")


def command_topic(site: str, host: str, command: str) -> str:
    """The topic one command to one host goes on."""
    return f"{TOPIC_ROOT}/{site}/{host}/cmd/{command}"


def subscription(site: str, host: str) -> str:
    """What an agent subscribes to: every command for itself."""
    return command_topic(site, host, "+")


@dataclass(frozen=True)
class Resend:
    """Send seqs first_seq..last_seq again."""

    first_seq: int
    last_seq: int
    gap: int | None = None


def _seq(value: object) -> int | None:
    """A seq, or None; a bool is not a number here."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SEQ:
        return value
    return None


def parse_resend(payload: bytes, host: str, site: str) -> Resend | str:
    """The resend command in ``payload`` for this host, or why it is refused."""
    if len(payload) > MAX_BYTES:
        return f"command of {len(payload)} bytes is over {MAX_BYTES}"
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return f"not JSON: {str(exc)[:100]}"
    if not isinstance(body, dict):
        return "not a JSON object"
    unknown = sorted(str(k)[:40] for k in set(body) - _FIELDS)
    if unknown:
        return f"unknown fields: {', '.join(unknown[:5])}"
    v = body.get("v")
    if isinstance(v, bool) or v != 1 or body.get("kind") != "resend":
        return "not a version 1 resend command"
    if body.get("host") != host or body.get("site") != site:
        return f"names another host, not {site}/{host}"
    first, last = _seq(body.get("first_seq")), _seq(body.get("last_seq"))
    if first is None or last is None:
        return "first_seq and last_seq must be integers from 1 to 2^53-1"
    if last < first or last - first >= MAX_RANGE:
        return f"seqs {first}..{last}: last_seq must be within {MAX_RANGE - 1} after first_seq"
    gap = body.get("gap")
    if "gap" in body and _seq(gap) is None:
        return "gap must be a positive integer when given"
    ts = body.get("ts")
    if not isinstance(ts, str) or not _TS.match(ts):
        return "ts must be an RFC 3339 UTC timestamp like 2026-12-03T09:00:00.000Z"
    return Resend(first, last, gap)
