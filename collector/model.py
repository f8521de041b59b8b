"""Frozen values the collector passes inward: received messages and the decisions on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.wire import Telemetry


@dataclass(frozen=True)
class Received:
    """One MQTT message as it came off the wire; paho objects stop at the edge."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    connection: int = 0  # which connection brought it: a packet id means nothing on another
    index: int = 0  # arrival order on this subscriber: acknowledgements keep it


@dataclass(frozen=True)
class Message:
    """A validated payload of one of the four kinds.

    Telemetry, nearly every message, stays the typed value it was validated as
    (`telemetry`) and has an empty `body`: decoding it a second time into dicts cost more
    than the validation itself. Births, events and states keep their decoded `body`.
    """

    kind: str
    host: str
    site: str
    seq: int
    ts: datetime
    body: dict[str, Any]
    received_at: datetime
    snapshot: Telemetry | None = None
    payload: bytes = b""  # the bytes as received: what a dead letter keeps
    #: telemetry: wire.readings_key of the readings, found by decode ("" when not known);
    #: the metric set's cache key and a cheap test of which metrics a message holds
    set_key: str = ""

    @property
    def telemetry(self) -> Telemetry:
        """The typed telemetry payload; a programming error for any other kind."""
        if self.snapshot is None:
            raise TypeError(f"a {self.kind} message carries no telemetry")
        return self.snapshot


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
