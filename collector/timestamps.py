"""The MQTT contract's timestamps (RFC 3339, UTC, a Z suffix), read one way everywhere.

Its own module so that the validator (collector.wire) and the code after it (decode,
rules, store) share this one parser: a timestamp wire accepts is one they can read.
"""

from __future__ import annotations

from datetime import datetime


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp with a Z suffix, as the MQTT contract writes them."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
