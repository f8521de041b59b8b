"""Commands to agents (schemas/mqtt/resend.json), built here for the collector.

The agent parses them with its own code (agent/commands.py: the agent imports nothing
outside agent/); tests hold the two to this one schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.topics import command_topic


def resend_topic(site: str, host: str) -> str:
    """Where a host's agent takes resend commands."""
    return command_topic(site, host, "resend")


def resend(host: str, site: str, first_seq: int, last_seq: int, ts: datetime,
           gap: int | None = None) -> dict[str, Any]:
    """Ask one agent to send seqs first_seq..last_seq again."""
    out: dict[str, Any] = {
        "v": 1, "kind": "resend", "host": host, "site": site, "first_seq": first_seq,
        "last_seq": last_seq,
        "ts": ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if gap is not None:
        out["gap"] = gap
    return out
