"""One collection turned into messages: probes -> readings/states -> birth, events, telemetry.

The Reporter holds no I/O of its own: it reads through the Root the probes were given,
takes sequence numbers from a callable (the spool, or a counter for ``once``) and the time
from an injected clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent import __version__, messages
from agent.messages import ComponentState
from agent.probes import MemoryState, Probe, ProbeContext, ProbeResult, StateStore
from agent.probes import system as system_probe
from agent.probes.coverage import NO_ANSWER, Coverage
from agent.root import Root

if TYPE_CHECKING:
    from agent.config import AgentConfig

log = logging.getLogger(__name__)


def probe_context(cfg: AgentConfig, state: StateStore | None = None) -> ProbeContext:
    """What the probes are built with, from the config; ``state`` is the spool when running."""
    return ProbeContext(
        cfg.host,
        smart_interval_s=cfg.smart_interval_s,
        limits=cfg.limits,
        state=state if state is not None else MemoryState(),
    )


@dataclass(frozen=True)
class Outgoing:
    """A message ready to store and publish."""

    kind: str
    topic: str
    payload: dict[str, Any]

    @property
    def qos(self) -> int:
        """QoS from the contract's delivery table."""
        return messages.DELIVERY[self.kind][0]

    @property
    def retain(self) -> bool:
        """Retain flag from the contract's delivery table."""
        return messages.DELIVERY[self.kind][1]

    def encode(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=False).encode()


def collect(probes: Iterable[Probe], root: Root) -> ProbeResult:
    """Run every probe once; a probe that raises is logged and skipped, never fatal."""
    results = []
    for probe in probes:
        try:
            results.append(probe.collect(root).covered(probe.name))
        except Exception as exc:  # a broken probe must not silence the others
            log.exception("probe %s failed", probe.name)
            results.append(ProbeResult(coverage=(Coverage(
                probe.name, NO_ANSWER, f"the probe failed: {exc!r}"[:500]),)))
    return ProbeResult.merge(results)


def changes(
    previous: Mapping[str, str] | None, states: Sequence[ComponentState]
) -> list[ComponentState]:
    """States worth an event: on the first collection every failed one, then every change."""
    if previous is None:
        return [s for s in states if s.status == "failed"]
    return [s for s in states if s.status != previous.get(s.id, "ok")]


class Reporter:
    """Builds the messages of one host from its probes."""

    def __init__(
        self,
        *,
        host: str,
        site: str,
        interval_s: float,
        probes: Sequence[Probe],
        root: Root,
        next_seq: Callable[[], int],
        clock: Callable[[], datetime],
    ) -> None:
        """Wire the probes, the root, the sequence source and the clock."""
        self.host, self.site, self.interval_s = host, site, interval_s
        self.probes, self.root = probes, root
        self.next_seq, self.clock = next_seq, clock
        self.latest: ProbeResult | None = None
        self._statuses: dict[str, str] | None = None

    def _out(self, kind: str, build: Callable[[int, datetime], dict[str, Any]]) -> Outgoing:
        """Number a message and stamp it."""
        payload = build(self.next_seq(), self.clock())
        return Outgoing(kind, messages.topic(self.site, self.host, kind), payload)

    def birth(self, session: str | None = None, will_seq: int | None = None) -> Outgoing:
        """The birth message: inventory of the latest collection (collecting if none yet)."""
        if self.latest is None:
            self.latest = collect(self.probes, self.root)
        inventory, coverage = self.latest.inventory, self.latest.coverage
        return self._out(
            "birth",
            lambda seq, ts: messages.birth(
                self.host,
                self.site,
                seq,
                ts,
                agent_version=__version__,
                boot_id=system_probe.boot_id(self.root)[:64],
                interval_s=self.interval_s,
                chassis=system_probe.chassis(self.root),
                components=inventory,
                session=session,
                will_seq=will_seq,
                probes=[c.as_json() for c in coverage],
            ),
        )

    def state(
        self, online: bool, *, reason: str | None = None, session: str | None = None,
        will_seq: int | None = None,
    ) -> Outgoing:
        """A state message (online, or offline with a reason)."""
        return self._out(
            "state",
            lambda seq, ts: messages.state(
                self.host, self.site, seq, ts, online, reason=reason, session=session,
                will_seq=will_seq,
            ),
        )

    def refresh(self) -> ProbeResult:
        """Collect once and keep the result as the latest (the birth's inventory)."""
        self.latest = collect(self.probes, self.root)
        return self.latest

    def report(self, result: ProbeResult | None = None) -> list[Outgoing]:
        """An event per state change, then the telemetry; collects unless given a result."""
        detected = self.clock()
        if result is None:
            result = self.refresh()
        out = [
            self._event(s, detected, result.evidence.get(s.id, {}))
            for s in changes(self._statuses, result.states)
        ]
        self._statuses = {s.id: s.status for s in result.states}
        out.append(
            self._out(
                "telemetry",
                lambda seq, ts: messages.telemetry(
                    self.host,
                    self.site,
                    seq,
                    ts,
                    interval_s=self.interval_s,
                    readings=result.readings,
                    components=result.states,
                ),
            )
        )
        return out

    def _event(
        self, state: ComponentState, detected: datetime, evidence: Mapping[str, Any]
    ) -> Outgoing:
        """An event message about one component."""
        return self._out(
            "event",
            lambda seq, ts: messages.event(
                self.host,
                self.site,
                seq,
                ts,
                state=state,
                detected_at=detected,
                evidence={**evidence, **({"detail": state.detail} if state.detail else {})},
            ),
        )
