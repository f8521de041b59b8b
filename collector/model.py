"""Frozen values the collector passes inward: received messages and the decisions on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp with a Z suffix, as the MQTT contract writes them."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Received:
    """One MQTT message as it came off the wire; paho objects stop at the edge."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    connection: int = 0  # which connection brought it: a packet id means nothing on another


@dataclass(frozen=True)
class Message:
    """A validated payload of one of the four kinds."""

    kind: str
    host: str
    site: str
    seq: int
    ts: datetime
    body: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True)
class DeadLetter:
    """A payload refused, with the reason an operator can act on."""

    topic: str
    reason: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Detection:
    """A failure proved by evidence: opens one incident per (host, component, failure)."""

    host: str
    component: str
    kind: str
    failure: str
    detected_at: datetime
    rule: str
    slot: str | None = None
    serial: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
