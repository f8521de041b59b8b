"""One virtual host of the simulator: a made-up server (its inventory, readings, and the
parts that fail and get replaced) and the agent that speaks for it through agent.link, as
the real daemon does. hourglass.simulate runs many of them in one loop.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent import __version__, messages
from agent.config import AgentConfig
from agent.core import Outgoing
from agent.link import Link
from agent.messages import Component, ComponentState, Reading
from agent.spool import Spool


@dataclass
class Part:
    """One simulated component and its health."""

    id: str
    kind: str
    slot: str
    serial: str | None = None
    model: str | None = None
    size: int | None = None
    failure: str | None = None


@dataclass
class VirtualHost:
    """A made-up server: inventory, readings, and the parts that failed."""

    host: str
    site: str
    rng: random.Random
    parts: dict[str, Part] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, dev in enumerate(("sda", "sdb", "sdc", "sdd")):
            serial = self._serial()
            self.parts[dev] = Part(f"disk:{serial}", "disk", dev, serial, "ST8000NM000A",
                                   8_001_563_222_016)
            self.parts[f"dimm{i}"] = Part(f"dimm:A{i + 1}", "dimm", f"A{i + 1}", self._serial(),
                                          "M393A4K40EB3-CWE", 34_359_738_368)
        for i in (1, 2):
            self.parts[f"psu{i}"] = Part(f"psu:{i}", "psu", f"PSU{i}")
        for i in range(1, 5):
            self.parts[f"fan{i}"] = Part(f"fan:fan{i}", "fan", f"fan{i}")
        self.parts["nic0"] = Part("nic:eno1", "nic", "eno1")

    def _serial(self) -> str:
        return "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))

    def inventory(self) -> list[Component]:
        """The birth inventory."""
        return [Component(p.id, p.kind, p.slot, f"/dev/{p.slot}" if p.kind == "disk" else None,
                          p.model, p.serial, p.size) for p in self.parts.values()]

    def states(self) -> list[ComponentState]:
        """Component states for telemetry."""
        return [ComponentState(p.id, p.kind, "failed" if p.failure else "ok", p.slot, p.serial,
                               p.failure) for p in self.parts.values()
                if p.kind in ("disk", "psu", "fan", "dimm")]

    def readings(self) -> list[Reading]:
        """About 40 readings, like a real server's."""
        r = self.rng
        out = [Reading(f"host:{self.host}", "cpu.percent", round(r.uniform(2, 60), 1)),
               Reading(f"host:{self.host}", "mem.used_percent", round(r.uniform(20, 80), 1)),
               Reading(f"host:{self.host}", "load.1m", round(r.uniform(0, 8), 2))]
        for i in range(8):
            out.append(Reading(f"cpu:{i // 4}", f"temp.core{i % 4}_c", round(r.uniform(38, 70))))
        for p in self.parts.values():
            if p.kind == "fan":
                rpm = 0.0 if p.failure else float(r.randint(5200, 6400))
                out.append(Reading(p.id, "fan.rpm", rpm))
            elif p.kind == "disk":
                out += [Reading(p.id, "smart.temperature_c", float(r.randint(28, 41))),
                        Reading(p.id, "smart.attr_5_raw", 1208.0 if p.failure else 0.0),
                        Reading(p.id, "smart.attr_197_raw", 0.0),
                        Reading(p.id, "smart.power_on_hours", 21000.0)]
            elif p.kind == "psu":
                out += [Reading(p.id, "psu.watts", 0.0 if p.failure else r.uniform(180, 260)),
                        Reading(p.id, "psu.input_volts", 0.0 if p.failure else 229.0)]
        return out

    def fail(self, kind: str) -> Part:
        """Break one part of the given kind (disk: sda, fan: fan1, power: PSU 1)."""
        part = self.parts[{"disk": "sda", "fan": "fan1", "power": "psu1"}[kind]]
        part.failure = {"disk": "smart_failed", "fan": "fan_stopped", "power": "psu_lost"}[kind]
        return part

    def repair(self, component: str, new_serial: str | None) -> Part | None:
        """The technician's fix: a disk gets a new serial in its slot; others run again."""
        for key, part in self.parts.items():
            if part.id == component and part.failure:
                part.failure = None
                if part.kind == "disk":
                    serial = new_serial or self._serial()
                    self.parts[key] = Part(f"disk:{serial}", "disk", part.slot, serial,
                                           part.model, part.size)
                    return self.parts[key]
                return part
        return None


class Agent:
    """One virtual host, sending exactly what the real agent would, the way it would: each
    message numbered and stored in the agent's own spool (agent.spool) before the agent's
    own publisher (agent.link) sends it, kept after the PUBACK for a resend. A simulator
    killed at any moment loses nothing: restarted on the same --state, it sends what waits."""

    def __init__(self, vh: VirtualHost, spool: Spool, interval_s: float, cfg: AgentConfig,
                 v5: bool = True) -> None:
        self.vh, self.spool, self.interval_s = vh, spool, interval_s
        self.boot = uuid.uuid4().hex
        self.link = Link(cfg, spool, self, v5=v5)

    # -- what agent.link asks of a host: its birth and state messages --------------------

    def _out(self, kind: str, payload: dict[str, Any]) -> Outgoing:
        return Outgoing(kind, messages.topic(self.vh.site, self.vh.host, kind), payload)

    def birth(self, session: str | None = None, will_seq: int | None = None) -> Outgoing:
        """The birth of a new connection: the simulated inventory."""
        return self._out("birth", messages.birth(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC),
            agent_version=f"{__version__}-sim", boot_id=self.boot, interval_s=self.interval_s,
            chassis={"vendor": "Simulated", "model": "SIM-1U", "serial": f"CH-{self.vh.host}"},
            components=self.vh.inventory(), session=session, will_seq=will_seq))

    def state(self, online: bool, *, reason: str | None = None, session: str | None = None,
              will_seq: int | None = None) -> Outgoing:
        """A state message."""
        return self._out("state", messages.state(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC), online,
            reason=reason, session=session, will_seq=will_seq))

    # -- what the simulator produces --------------------------------------------------

    def telemetry(self) -> None:
        """Store one telemetry message; the publisher sends it."""
        self.link.put(self._out("telemetry", messages.telemetry(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC),
            interval_s=self.interval_s, readings=self.vh.readings(),
            components=self.vh.states())))

    def event(self, part: Part) -> None:
        """Store the event of a part's new state; events go out before waiting telemetry."""
        now = datetime.now(UTC)
        st = ComponentState(part.id, part.kind, "failed" if part.failure else "ok", part.slot,
                            part.serial, part.failure)
        self.link.put(self._out("event", messages.event(
            self.vh.host, self.vh.site, self.spool.draft_seq(), now, state=st, detected_at=now,
            evidence={"simulated": True})))

    def step(self) -> None:
        """Move this host's MQTT traffic without waiting (connect when due, publish)."""
        self.link.publisher.step(timeout=0.0)
