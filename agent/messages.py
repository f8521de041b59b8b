"""Builds the MQTT topics and payloads of schemas/mqtt; the one place that knows their shape.

The real agent and the simulator both build their messages here, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CONTRACT_VERSION = 1
TOPIC_ROOT = "hg/v1"
#: kind -> (QoS, retained), as design.md's MQTT contract table says.
DELIVERY: dict[str, tuple[int, bool]] = {
    "birth": (1, True),
    "telemetry": (1, False),
    "event": (1, False),
    "state": (1, True),
}


def rfc3339(ts: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with a Z suffix and milliseconds."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def topic(site: str, host: str, kind: str) -> str:
    """The topic a host publishes one kind of message on."""
    return f"{TOPIC_ROOT}/{site}/{host}/{kind}"


@dataclass(frozen=True)
class Component:
    """One inventory item of a birth message."""

    id: str
    kind: str
    slot: str | None = None
    device: str | None = None
    model: str | None = None
    serial: str | None = None
    size_bytes: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    #: set when the agent sees the part but cannot watch its health: {status, detail}
    coverage: Mapping[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON object for this component."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        for name in ("slot", "device", "model", "serial", "size_bytes"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        if self.coverage:
            out["coverage"] = dict(self.coverage)
        return out


@dataclass(frozen=True)
class Reading:
    """One numeric reading of a component."""

    component: str
    metric: str
    value: float


@dataclass(frozen=True)
class ComponentState:
    """The health of one component at one collection."""

    id: str
    kind: str
    status: str  # ok | warning | failed | unknown
    slot: str | None = None
    serial: str | None = None
    failure: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON object for this component state."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "status": self.status}
        for name in ("slot", "serial", "failure", "detail"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def envelope(kind: str, host: str, site: str, seq: int, ts: datetime) -> dict[str, Any]:
    """The fields every payload starts with."""
    return {"v": CONTRACT_VERSION, "kind": kind, "host": host, "site": site, "seq": seq,
            "ts": rfc3339(ts)}


def birth(
    host: str,
    site: str,
    seq: int,
    ts: datetime,
    *,
    agent_version: str,
    boot_id: str,
    interval_s: float,
    chassis: Mapping[str, str | None],
    components: Iterable[Component],
    session: str | None = None,
    will_seq: int | None = None,
    probes: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A birth payload: the full inventory, sent retained on every connect; ``will_seq``
    is the seq this connection's last will holds (a seq the collector may never see)."""
    msg = envelope("birth", host, site, seq, ts)
    msg.update(
        agent_version=agent_version,
        boot_id=boot_id,
        interval_s=interval_s,
        chassis={k: chassis.get(k) for k in ("vendor", "model", "serial")},
        components=[c.as_json() for c in components],
    )
    if session is not None:
        msg["session"] = session
    if will_seq is not None:
        msg["will_seq"] = will_seq
    if probes := list(probes):
        msg["probes"] = probes  # each probe's coverage: what this host's parts lack
    return msg


def telemetry(
    host: str,
    site: str,
    seq: int,
    ts: datetime,
    *,
    interval_s: float,
    readings: Iterable[Reading],
    components: Iterable[ComponentState],
) -> dict[str, Any]:
    """A telemetry payload: readings and component states of one collection."""
    msg = envelope("telemetry", host, site, seq, ts)
    msg.update(
        interval_s=interval_s,
        readings=[
            {"component": r.component, "metric": r.metric, "value": r.value} for r in readings
        ],
        components=[c.as_json() for c in components],
    )
    return msg


def event(
    host: str,
    site: str,
    seq: int,
    ts: datetime,
    *,
    state: ComponentState,
    detected_at: datetime,
    evidence: Mapping[str, Any],
) -> dict[str, Any]:
    """An event payload: a component's state changed; carries the evidence."""
    msg = envelope("event", host, site, seq, ts)
    msg.update(
        component=state.id,
        component_kind=state.kind,
        status=state.status,
        detected_at=rfc3339(detected_at),
        evidence=dict(evidence),
    )
    for name in ("failure", "slot", "serial"):
        value = getattr(state, name)
        if value is not None:
            msg[name] = value
    return msg


def state(
    host: str,
    site: str,
    seq: int,
    ts: datetime,
    online: bool,
    *,
    reason: str | None = None,
    session: str | None = None,
    will_seq: int | None = None,
) -> dict[str, Any]:
    """A state payload: online after birth, offline as the last will.

    ``reason`` (offline only) is "lost" for the last will and "shutdown" for a planned
    stop; ``session`` is the id of the MQTT connection that birth, online and will share,
    ``will_seq`` (online) the seq its will holds.
    """
    msg = envelope("state", host, site, seq, ts)
    msg["state"] = "online" if online else "offline"
    if reason is not None and not online:
        msg["reason"] = reason
    if session is not None:
        msg["session"] = session
    if will_seq is not None and online:
        msg["will_seq"] = will_seq
    return msg
